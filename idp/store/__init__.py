"""Storage: the declarative base and database sessions, migrations, the ephemeral store and
encryption of secrets at rest."""
