"""Default data shipped as package `bot.data`: texts, FAQ, canned replies, NLU data, demo."""
