"""Configuration at the bottom: the settings (read by the CLI only) and the status files."""
