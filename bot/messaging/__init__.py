"""Moving messages: the bus (in-process or Redis Streams), group commits, rate limits, outbox."""
