"""The shipped migrations, read but never run (the integration tests apply them to Postgres)."""

import re
from importlib import resources
from pathlib import Path

import chat
import pytest
from beckon_messaging import migrations as shared_migrations
from chat.adapters import migrations
from chat.adapters.migrations import migration_files

CHAT_TABLES = {
    "sites",
    "agents",
    "teams",
    "team_members",
    "visitors",
    "conversations",
    "messages",
    "invitations",
    "notes",
    "tags",
    "canned_replies",
    "outbox",
    "activity",
    "assignments",
    "transfers",
}
_COMMENT = re.compile(r"--[^\n]*")
_CREATE_TABLE = re.compile(r"^CREATE TABLE (?:IF NOT EXISTS )?([\w.]+)\s*\(", re.IGNORECASE)
_ALTER_TABLE = re.compile(r"^ALTER TABLE (?:IF EXISTS )?([\w.]+)\s", re.IGNORECASE)
# SQL helpers (e.g. the privacy subject hash), in the schema too
_CREATE_FUNCTION = re.compile(r"^CREATE FUNCTION ([\w.]+)\(", re.IGNORECASE)
_CREATE_INDEX = re.compile(
    r"^CREATE (?:UNIQUE )?INDEX (?:IF NOT EXISTS )?\w+ ON ([\w.]+)", re.IGNORECASE
)
# an index may be replaced (0011 swaps lower(email) for the normalised address); nothing
# that holds data is ever dropped
_DROP_INDEX = re.compile(r"^DROP INDEX (?:IF EXISTS )?([\w.]+)$", re.IGNORECASE)
_INSERT_INTO = re.compile(r"^INSERT INTO ([\w.]+)\s", re.IGNORECASE)  # backfills
_TABLE_USE = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE|REFERENCES)\s+chat\.(\w+)")


def _statements(sql: str) -> list[str]:
    code = _COMMENT.sub("", sql)
    return [" ".join(part.split()) for part in code.split(";") if part.strip()]


def _all_sql() -> str:
    return "\n".join(sql for _, sql in migration_files())


def _created_tables() -> dict[str, str]:
    tables = {}
    for statement in _statements(_all_sql()):
        found = _CREATE_TABLE.match(statement)
        if found:
            tables[found.group(1)] = statement
    return tables


class _FakeEntry:
    def __init__(self, name: str, text: str = "") -> None:
        self.name = name
        self._text = text

    def read_text(self, encoding: str = "utf-8") -> str:
        return self._text


class _FakeFolder:
    def __init__(self, entries: list[_FakeEntry]) -> None:
        self._entries = entries

    def __truediv__(self, name: str) -> "_FakeFolder":
        assert name == "migrations"
        return self

    def iterdir(self):
        return iter(self._entries)


def test_the_shipped_migrations_start_with_the_initial_one():
    versions = [version for version, _ in migration_files()]
    assert versions[0] == "0001_initial"
    assert versions == sorted(versions)
    assert len(versions) == len(set(versions))
    assert all(re.fullmatch(r"\d{4}_[a-z0-9_]+", version) for version in versions)


def test_every_sql_file_in_the_package_is_a_migration():
    folder = resources.files(chat) / "migrations"
    on_disk = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
    assert [f"{version}.sql" for version, _ in migration_files()] == on_disk


def test_versions_come_oldest_first_and_only_from_sql_files(monkeypatch):
    folder = _FakeFolder(
        [
            _FakeEntry("0010_tenth.sql", "-- 10"),
            _FakeEntry("README.md", "not a migration"),
            _FakeEntry("0002_second.sql", "-- 2"),
            _FakeEntry("0001_initial.sql", "-- 1"),
            _FakeEntry("0002_second.sql.orig", "a leftover"),
        ]
    )
    monkeypatch.setattr(shared_migrations.resources, "files", lambda package: folder)
    assert migration_files() == [
        ("0001_initial", "-- 1"),
        ("0002_second", "-- 2"),
        ("0010_tenth", "-- 10"),
    ]


def test_the_schema_has_every_chat_table():
    created = _created_tables()
    assert set(created) >= {f"chat.{table}" for table in CHAT_TABLES}


def test_everything_lands_in_the_chat_schema():
    for statement in _statements(_all_sql()):
        table = (
            _CREATE_TABLE.match(statement)
            or _CREATE_INDEX.match(statement)
            or _ALTER_TABLE.match(statement)
            or _CREATE_FUNCTION.match(statement)
            or _DROP_INDEX.match(statement)
            or _INSERT_INTO.match(statement)
        )
        assert table is not None, f"unexpected statement: {statement[:80]}"
        assert table.group(1).startswith("chat."), statement[:80]


def test_the_migrations_leave_the_schema_and_its_bookkeeping_to_migrate():
    sql = _all_sql().lower()
    assert "create schema" not in sql
    assert "schema_migrations" not in sql
    drops = [s for s in _statements(sql) if "drop " in s]
    assert all(_DROP_INDEX.match(s) for s in drops), drops


def test_every_table_the_service_queries_is_created():
    package = Path(str(resources.files(chat)))
    sources = [path.read_text() for path in package.rglob("*.py")]
    used = {name for source in sources for name in _TABLE_USE.findall(source)}
    assert used, "found no queries: the pattern is out of date"
    used.discard("schema_migrations")  # the bookkeeping migrate() creates itself
    assert {f"chat.{name}" for name in used} <= set(_created_tables())


@pytest.mark.parametrize(
    ("table", "needed"),
    [
        ("conversations", ["conversation_id uuid PRIMARY KEY", "last_seq integer NOT NULL"]),
        ("messages", ["UNIQUE (conversation_id, seq)", "seq integer NOT NULL"]),
        ("agents", ["max_chats integer NOT NULL", "last_assigned_at timestamptz"]),
        ("outbox", ["id bigserial PRIMARY KEY", "published_at timestamptz"]),
        ("team_members", ["PRIMARY KEY (site_id, team, agent_id)"]),
        ("assignments", ["started_at timestamptz NOT NULL", "ended_at timestamptz"]),
        ("transfers", ["note text", "to_team text NOT NULL"]),
    ],
)
def test_the_columns_the_service_relies_on_exist(table, needed):
    statement = _created_tables()[f"chat.{table}"]
    for fragment in needed:
        assert fragment in statement


def test_one_live_conversation_per_visitor_is_enforced_by_an_index():
    statements = _statements(_all_sql())
    assert (
        "CREATE UNIQUE INDEX conversations_one_live ON chat.conversations (site_id, visitor_id) "
        "WHERE status IN ('queued', 'open')"
    ) in statements


def test_a_resent_message_is_stored_once():
    statements = _statements(_all_sql())
    assert any(
        s.startswith("CREATE UNIQUE INDEX messages_client_id ON chat.messages") and "client_id" in s
        for s in statements
    )


def test_status_checks_match_the_documented_values():
    created = _created_tables()
    assert "status IN ('queued', 'open', 'closed', 'offline')" in created["chat.conversations"]
    assert "status IN ('online', 'away', 'offline')" in created["chat.agents"]
    assert "author IN ('visitor', 'agent', 'system')" in created["chat.messages"]


def test_each_python_step_belongs_to_a_shipped_migration():
    versions = {version for version, _ in migration_files()}
    assert set(migrations.BEFORE) <= versions


def test_one_agent_holds_a_conversation_at_a_time():
    statements = _statements(_all_sql())
    assert (
        "CREATE UNIQUE INDEX assignments_current ON chat.assignments (conversation_id) "
        "WHERE ended_at IS NULL"
    ) in statements
