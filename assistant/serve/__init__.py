"""`assistant serve`: the assistant (dialogue loop, plugins, approval policy, sessions) behind an
OpenAI-compatible HTTP API.

    protocol.py  OpenAI's JSON shapes (completions, chunks, errors) and how failures map to them
    messages.py  an OpenAI chat request -> the turn to run (text, attachments, history, overrides)
    backend.py   runs turns: one Dialogue per request, a shared model client, a concurrency limit
    app.py       the Starlette app: routes, bearer auth, streaming
    cli.py       the command: settings, auth policy, the engine, uvicorn

docs/serving.md describes the API.
"""
