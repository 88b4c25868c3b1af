"""The shared outbox and migration runner refuse names they would put into SQL text unless
they are plain identifiers (they come from the services' code, never from input). Their
behaviour on Postgres and Kafka is tested by chat's and leads' integration tests."""

import pytest
from beckon_messaging import migrations
from beckon_messaging.outbox import OutboxRelay, outbox_table


@pytest.mark.parametrize("name", ["chat.outbox", "leads.outbox", "a_1.b_2"])
def test_a_schema_qualified_table_is_accepted(name):
    assert outbox_table(name) == name


@pytest.mark.parametrize(
    "name", ["outbox", "leads.outbox; DROP TABLE x", "Leads.Outbox", "leads.out box", ""]
)
def test_anything_else_is_refused(name):
    with pytest.raises(ValueError, match=r"schema\.table"):
        outbox_table(name)


def test_a_relay_on_a_bad_table_is_refused_before_it_runs():
    with pytest.raises(ValueError, match=r"schema\.table"):
        OutboxRelay(None, None, table="outbox", lock_id=1, poll_s=1.0)  # type: ignore[arg-type]


async def test_a_migration_schema_must_be_an_identifier():
    with pytest.raises(ValueError, match="identifier"):
        await migrations.migrate(None, schema="x; --", files=[], lock_id=1)  # type: ignore[arg-type]
