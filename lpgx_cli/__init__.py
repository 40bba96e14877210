"""The `lpgx` command line: argument parsing and terminal output only."""
