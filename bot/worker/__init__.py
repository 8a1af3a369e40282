"""The pipeline worker: load a turn's state, call the NLU and the dialogue, apply the result."""
