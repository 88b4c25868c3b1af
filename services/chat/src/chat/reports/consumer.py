"""Reads `rules.stats` into a RuleStatsBook: every instance, no consumer group, from the
beginning of the (compacted) topic, then follows it. A restart simply reads it again."""

from __future__ import annotations

import logging

from aiokafka import ConsumerRecord
from beckon_contracts.topics import RULES_STATS
from beckon_messaging import PLAINTEXT, KafkaSecurity

from chat.adapters.topic_reader import TopicReader
from chat.reports.stats import RuleStatsBook

log = logging.getLogger("chat.reports")


class RuleStatsReader(TopicReader):
    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        book: RuleStatsBook,
        *,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        super().__init__(bootstrap, client_id, RULES_STATS, self._apply, security=security)
        self.book = book

    def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if not self.book.apply(record.key, record.value):
            log.warning("unusable rules.stats record", extra={"offset": record.offset})
