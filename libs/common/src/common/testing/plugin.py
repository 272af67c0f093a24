"""pytest plugin: real Kafka and PostgreSQL for tests (filled in below)."""
