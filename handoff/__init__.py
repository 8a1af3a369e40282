"""The caretakers' console and the managers' pages."""
