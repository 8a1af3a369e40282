"""The composition root: the runtime and the web app; the only wiring of channels and handoff."""
