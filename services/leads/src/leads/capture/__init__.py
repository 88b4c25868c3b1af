"""Capture: leads from `chat.events` (lead marks, e-mails left in chats, offline messages,
closed conversations) and `tracking.events` (identify traits, orders), one open lead per
person (dedup and merges, undone by an admin). `service.py` holds the use cases,
`store.py` their SQL, `model.py` the pure parts, `visitors.py` the visitors.state cache and
`consumer.py` the Kafka side (docs/leads.md, "Capture and dedup")."""
