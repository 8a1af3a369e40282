"""Natural-language understanding: from a tenant's text to a `Parse`."""

from nlu.types import CONVERSATION_INTENTS, INTENTS, TOPIC_INTENTS, Entity, Parse

__all__ = ["CONVERSATION_INTENTS", "INTENTS", "TOPIC_INTENTS", "Entity", "Parse"]
