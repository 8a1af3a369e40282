"""The kernel: settings, message types, errors, channel protocols, data files, passwords."""
