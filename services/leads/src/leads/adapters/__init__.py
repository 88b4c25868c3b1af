"""What the leads service talks to: Postgres (migrations, stores) and Kafka (the producer and
the outbox relay)."""
