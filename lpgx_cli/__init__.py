"""The `lpgx` command line (layer 7): argument parsing and terminal output only."""
