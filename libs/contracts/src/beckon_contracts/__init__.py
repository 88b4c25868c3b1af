"""Beckon's event contracts: the envelope, one module per stream, the topic registry."""

from beckon_contracts.envelope import Envelope, record_key
from beckon_contracts.ids import uuid7

__all__ = ["Envelope", "record_key", "uuid7"]
