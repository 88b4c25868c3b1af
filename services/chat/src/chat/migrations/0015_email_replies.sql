-- Replies by e-mail (issue 16): the notifier's `conversation.add_email_reply` commands on
-- `chat.inbound` become visitor messages of their conversation.

-- How the message came: typed in the widget or console ('chat'), or a visitor's e-mailed
-- reply ('email').
ALTER TABLE chat.messages ADD COLUMN channel text NOT NULL DEFAULT 'chat'
    CHECK (channel IN ('chat', 'email'));

-- What an e-mailed reply carried, listed for the agent and never stored:
-- [{"filename": text|null, "content_type": text, "size": bytes}, ...]
ALTER TABLE chat.messages ADD COLUMN attachments jsonb NOT NULL DEFAULT '[]';

-- The `chat.inbound` command (its envelope's event_id) that added the message: a command
-- delivered twice adds one message.
ALTER TABLE chat.messages ADD COLUMN command_id uuid;
CREATE UNIQUE INDEX messages_command_id ON chat.messages (command_id)
    WHERE command_id IS NOT NULL;
