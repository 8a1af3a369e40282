"""Storage: the database engine and sessions, the ORM models, write helpers, migrations."""
