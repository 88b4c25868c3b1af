-- Trace context end to end (issue 13): W3C traceparent/tracestate as text ({"traceparent":
-- "00-…"}), so one trace follows an event from the tracker through triggers to the widget.

-- The trace of the request or record that wrote the row; the relay publishes it as the
-- record's Kafka headers.
ALTER TABLE chat.outbox ADD COLUMN headers jsonb NOT NULL DEFAULT '{}';

-- The trace of the `chat.invitations` record, continued by the widget's answers to it
-- (invitation.shown / accepted / declined and the conversation it starts).
ALTER TABLE chat.invitations ADD COLUMN trace jsonb NOT NULL DEFAULT '{}';
