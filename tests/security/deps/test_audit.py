"""The audit's judgement of pip-audit's report (no network: the reports are written here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("deps_audit", Path(__file__).with_name("audit.py"))
assert _spec is not None
assert _spec.loader is not None
audit = sys.modules["deps_audit"] = importlib.util.module_from_spec(_spec)  # for its dataclasses
_spec.loader.exec_module(audit)


def dep(name, version="1.0", vulns=(), skip=None):
    found = {"name": name, "version": version, "vulns": list(vulns)}
    if skip is not None:
        found = {"name": name, "skip_reason": skip}
    return found


def vuln(vuln_id, aliases=(), fixes=("2.0",)):
    return {"id": vuln_id, "aliases": list(aliases), "fix_versions": list(fixes)}


def test_a_clean_report_passes():
    verdict = audit.judge({"dependencies": [dep("a"), dep("b")]}, {})
    assert verdict.ok, verdict.lines


def test_a_vulnerability_fails_with_the_fix_named():
    report = {"dependencies": [dep("jinja2", "2.10", [vuln("PYSEC-2019-217", fixes=("2.10.1",))])]}
    verdict = audit.judge(report, {})
    assert not verdict.ok
    assert "jinja2 2.10: PYSEC-2019-217 (fixed in 2.10.1)" in verdict.lines[0]


def test_an_allowed_vulnerability_passes_by_its_id_or_an_alias():
    allowed = audit.parse_allowlist("CVE-2019-10906 jinja2 only the test tooling renders with it\n")
    report = {"dependencies": [dep("jinja2", "2.10", [vuln("PYSEC-2019-217", ["CVE-2019-10906"])])]}
    assert audit.judge(report, allowed).ok


def test_dependencies_the_service_did_not_answer_for_fail_the_audit():
    # pip-audit itself exits 0 with every dependency skipped: an unreachable service must not pass
    report = {"dependencies": [dep("a", skip="Dependency not found on PyPI"), dep("b")]}
    verdict = audit.judge(report, {})
    assert not verdict.ok
    assert verdict.lines[0].startswith("NOT AUDITED: 1 of 2 dependencies")


def test_an_empty_report_fails():
    assert not audit.judge({"dependencies": []}, {}).ok


def test_a_stale_allow_list_entry_fails():
    allowed = audit.parse_allowlist(
        "GHSA-xxxx-yyyy-zzzz somepkg fixed upstream in 1.2, not locked yet\n"
    )
    verdict = audit.judge({"dependencies": [dep("somepkg", "1.3")]}, allowed)
    assert not verdict.ok
    assert "STALE allow-list entry GHSA-xxxx-yyyy-zzzz" in verdict.lines[0]


@pytest.mark.parametrize("line", ["PYSEC-1 pkg", "PYSEC-1 pkg why", "PYSEC-1"])
def test_an_allow_list_line_without_a_reason_is_refused(line):
    with pytest.raises(audit.AllowListError, match="why it stands"):
        audit.parse_allowlist(line)


def test_the_house_allow_list_parses():
    audit.parse_allowlist(audit.ALLOWLIST.read_text(encoding="utf-8"))
