"""The shipped `leads` migrations, read but never run (the integration tests apply them)."""

import re
from importlib import resources
from pathlib import Path

import leads
from leads.adapters.migrations import migration_files

_COMMENT = re.compile(r"--[^\n]*")
_CREATE_TABLE = re.compile(r"^CREATE TABLE (?:IF NOT EXISTS )?([\w.]+)\s*\(", re.IGNORECASE)
_CREATE_INDEX = re.compile(
    r"^CREATE (?:UNIQUE )?INDEX (?:IF NOT EXISTS )?\w+ ON ([\w.]+)", re.IGNORECASE
)
_ALTER_TABLE = re.compile(r"^ALTER TABLE (?:IF EXISTS )?([\w.]+)\s", re.IGNORECASE)
# SQL helpers (e.g. the privacy subject hash), in the schema too
_CREATE_FUNCTION = re.compile(r"^CREATE FUNCTION ([\w.]+)\(", re.IGNORECASE)
# a trigger on a table of the schema (an agent's open leads, 0013), and a backfill of a column
_CREATE_TRIGGER = re.compile(r"^CREATE TRIGGER \w+ .*? ON ([\w.]+) ", re.IGNORECASE)
_UPDATE = re.compile(r"^UPDATE ([\w.]+) ", re.IGNORECASE)
# a function's body between $$ quotes: its semicolons do not end the statement
_BODY = re.compile(r"\$\$.*?\$\$", re.DOTALL)
_TABLE_USE = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE|REFERENCES)\s+leads\.(\w+)")
OPEN = "status IN ('new', 'assigned', 'contacted', 'qualified')"


def _statements() -> list[str]:
    code = _COMMENT.sub("", "\n".join(sql for _, sql in migration_files()))
    code = _BODY.sub("$$ (body) $$", code)
    return [" ".join(part.split()) for part in code.split(";") if part.strip()]


def _created_tables() -> set[str]:
    return {m.group(1) for s in _statements() if (m := _CREATE_TABLE.match(s))}


def test_versions_are_numbered_and_start_with_the_initial_one():
    versions = [version for version, _ in migration_files()]
    assert versions[0] == "0001_initial"
    assert versions == sorted(versions)
    assert all(re.fullmatch(r"\d{4}_[a-z0-9_]+", version) for version in versions)


def test_every_sql_file_in_the_package_is_a_migration():
    folder = resources.files(leads) / "migrations"
    on_disk = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
    assert [f"{version}.sql" for version, _ in migration_files()] == on_disk


def test_everything_lands_in_the_leads_schema_and_bookkeeping_is_left_to_migrate():
    for statement in _statements():
        found = (
            _CREATE_TABLE.match(statement)
            or _CREATE_INDEX.match(statement)
            or _ALTER_TABLE.match(statement)
            or _CREATE_FUNCTION.match(statement)
            or _CREATE_TRIGGER.match(statement)
            or _UPDATE.match(statement)
        )
        assert found is not None, f"unexpected statement: {statement[:80]}"
        assert found.group(1).startswith("leads."), statement[:80]
        assert "schema_migrations" not in statement


def test_every_table_the_service_queries_is_created():
    package = Path(str(resources.files(leads)))
    used = {name for path in package.rglob("*.py") for name in _TABLE_USE.findall(path.read_text())}
    assert used, "found no queries: the pattern is out of date"
    assert {f"leads.{name}" for name in used} <= _created_tables()


def test_one_open_lead_per_person_is_enforced_by_partial_unique_indexes():
    unique = [s for s in _statements() if s.startswith("CREATE UNIQUE INDEX leads_one_open_per")]
    assert len(unique) == 3  # e-mail, phone, visitor
    for statement in unique:
        assert OPEN in statement
        assert "merged_into IS NULL" in statement
