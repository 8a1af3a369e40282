"""The channels: one module per provider (Twilio, Telegram, web chat, terminal)."""
