"""Money on the wire: a JSON number, a Decimal in Python, never a float in arithmetic."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer, StringConstraints

Amount = Annotated[
    Decimal,
    Field(ge=0, le=Decimal("1000000000"), allow_inf_nan=False),
    PlainSerializer(lambda d: float(d), return_type=float, when_used="json"),
]
Currency = Annotated[
    str,
    BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    Field(description="ISO 4217 code, e.g. EUR"),
]
