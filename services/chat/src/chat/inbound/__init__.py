"""Replies by e-mail: the notifier's commands on `chat.inbound` become visitor messages.

When a visitor answers one of Beckon's e-mails, the notifier checks the reply address's token,
strips the quoted history and publishes `conversation.add_email_reply` (never writing chat's
database). Chat applies each command in one unit of work under the site's assignment lock
(`conversations.service.add_email_reply`):

- the conversation must exist and be the envelope's site's, else the command is dead-lettered
  (`unknown_conversation`, `wrong_site`); a command for a site this deployment does not know,
  naming no conversation of its own, is another deployment's on the same cluster (staging
  beside production, each in its own group) and is skipped, as invitations are;
- the text (control characters removed, cut to `CHAT_MAX_MESSAGE_CHARS` with an ellipsis)
  becomes the **visitor's** next message with `channel = 'email'`, and the attachments are
  listed with it (`chat.messages.attachments`: file name, type, size; never stored);
- `message.sent` (`channel: "email"`) goes out through the outbox, and every instance's hub
  delivers it to the site's agent sockets and the visitor's widget sockets exactly as a typed
  message (the hub adds the attachment notes from the stored row);
- the command's `event_id` is stored with the message (`chat.messages.command_id`, unique), so
  a command delivered twice adds one message.

**A reply to a closed conversation reopens it**: it goes back to its team's queue (published
as `conversation.transferred` to the team with nobody yet, since `chat.events` has no
"reopened"), and, as a new chat would, to the team's agent with the most room, if any
(`conversation.assigned`, how `auto`); then the message. A visitor has at most one live
conversation, so while they chat in another one, the reply is stored in the closed one,
which stays closed. Queued, open and offline conversations take the reply as they are.

- `domain.py`: the command as the message to store, a refusal as its dead letter (pure).
- `consumer.py`: the `<CHAT_CONSUMER_GROUP>-inbound` consumer, its retries and dead letters.
"""

from __future__ import annotations

from fastapi import APIRouter

from chat.conversations import service as conversations
from chat.features import RequestsOnly
from chat.inbound.consumer import InboundConsumer, InboundHandler
from chat.inbound.domain import EmailReply
from chat.runtime import Runtime

__all__ = ["InboundFeature"]


class InboundFeature(RequestsOnly):
    """Joins the `<consumer group>-inbound` group and applies the e-mailed replies."""

    router = APIRouter()  # no routes: commands come by Kafka only

    def __init__(self) -> None:
        self.consumer: InboundConsumer | None = None

    async def start(self, rt: Runtime) -> None:
        settings = rt.settings

        async def apply(reply: EmailReply) -> str:
            return await conversations.add_email_reply(
                uow=rt.uow,
                site_id=reply.site_id,
                command_id=reply.command_id,
                conversation_id=reply.conversation_id,
                text=reply.text,
                attachments=reply.attachments,
            )

        consumer = InboundConsumer(
            InboundHandler(apply, rt.bus.producer, max_chars=settings.max_message_chars),
            bootstrap=settings.kafka_bootstrap,
            client_id=f"chat-{settings.instance_id}-inbound",
            group_id=f"{settings.consumer_group}-inbound",
            security=settings.kafka_security,
            progress=rt.watchdog.track(f"{settings.consumer_group}-inbound"),
        )
        await consumer.start()
        self.consumer = consumer

    async def stop(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            await consumer.stop()
