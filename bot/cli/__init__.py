"""The `relais` command line."""
