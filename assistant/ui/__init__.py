"""The Textual terminal UI: `assistant` (no subcommand) or `assistant chat`.

- `app.py`: the App and `create_app(backend)`, the factory the CLI and the tests share;
- `backend.py`: the only module here that touches the model and dialogue layers;
- `screens/` (chat screen, modal dialogs), `widgets/`, and the one stylesheet `app.tcss`;
- `cli.py`: the `chat` subcommand.

Nothing is imported here, so `assistant.ui.cli` stays cheap to import for the main CLI.
"""
