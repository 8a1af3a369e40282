"""What every part of Relais shares: settings, types and small pure helpers."""
