"""Built-in plugins, installed as the `assistant_plugins` package and registered through the
`assistant.plugins` entry-point group, exactly as a third-party plugin would be."""
