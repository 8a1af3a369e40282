"""Relais: a messaging gateway for social landlords (SMS, Telegram, web chat, caretakers)."""
