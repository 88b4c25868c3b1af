"""`make lint`'s dependency audit: pip-audit over the locked requirements (`uv export --locked`,
every group, with hashes), judged against the allow-list beside this file.

It fails when
- a known vulnerability is not on the allow-list,
- an allow-list line gives no reason, or names a vulnerability no longer reported (stale),
- any dependency could not be audited: pip-audit itself reports such a dependency as skipped
  and exits 0, so a vulnerability service that does not answer would pass silently.

Usage: python tests/security/deps/audit.py REQUIREMENTS [--service pypi|osv]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ALLOWLIST = Path(__file__).with_name("pip-audit-allowlist.txt")


class AllowListError(ValueError):
    pass


@dataclass(frozen=True)
class Allowed:
    vuln_id: str
    package: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    ok: bool
    lines: list[str]


def parse_allowlist(text: str) -> dict[str, Allowed]:
    """`ID PACKAGE REASON...` per line (a line starting with # is a comment); every exception
    must say why it stands."""
    allowed: dict[str, Allowed] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3 or len(parts[2].strip()) < 10:
            raise AllowListError(
                f"allow-list line {number}: write 'VULN-ID package why it stands' "
                f"(a reason of a few words at least): {raw!r}"
            )
        vuln_id, package, reason = parts
        allowed[vuln_id] = Allowed(vuln_id, package.lower(), reason.strip())
    return allowed


def judge(report: dict[str, object], allowed: dict[str, Allowed]) -> Verdict:
    """What pip-audit's JSON `report` comes to under the allow-list."""
    dependencies = report.get("dependencies")
    if not isinstance(dependencies, list) or not dependencies:
        return Verdict(False, ["pip-audit audited no dependency: is the requirements file empty?"])
    lines: list[str] = []
    skipped = [d for d in dependencies if d.get("skip_reason")]
    found: set[str] = set()
    for dep in dependencies:
        for vuln in dep.get("vulns", []):
            ids = [vuln["id"], *vuln.get("aliases", [])]
            hit = next((i for i in ids if i in allowed), None)
            if hit is not None:
                found.add(hit)
                continue
            fixes = ", ".join(vuln.get("fix_versions", [])) or "none yet"
            lines.append(
                f"VULNERABLE {dep['name']} {dep['version']}: {vuln['id']} "
                f"(fixed in {fixes}); upgrade it, or allow it in {ALLOWLIST.name} with a reason"
            )
    for vuln_id in sorted(set(allowed) - found):
        if not skipped:  # with every dependency audited, an unreported entry is stale
            lines.append(
                f"STALE allow-list entry {vuln_id} ({allowed[vuln_id].package}): remove it"
            )
    if skipped:
        lines.append(
            f"NOT AUDITED: {len(skipped)} of {len(dependencies)} dependencies could not be "
            "checked (the vulnerability service did not answer for them), for example: "
            + "; ".join(str(d["skip_reason"]) for d in skipped[:3])
        )
        lines.append(
            "The audit needs the PyPI JSON API (https://pypi.org/pypi/<name>/<version>/json) "
            "or OSV (https://api.osv.dev, `--service osv`); run `make audit` where either is "
            "reachable. PIP_AUDIT=skip makes `make lint` go on without it (and says so)."
        )
    return Verdict(not lines, lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("requirements")
    parser.add_argument("--service", choices=("pypi", "osv"), default="pypi")
    args = parser.parse_args(argv)
    try:
        allowed = parse_allowlist(ALLOWLIST.read_text(encoding="utf-8"))
    except AllowListError as exc:
        print(f"pip-audit: {exc}", file=sys.stderr)
        return 2
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip_audit",
            "--requirement",
            args.requirements,
            "--require-hashes",
            "--disable-pip",
            "--vulnerability-service",
            args.service,
            "--progress-spinner",
            "off",
            "--format",
            "json",
            "--desc",
            "off",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        tail = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
        print(f"pip-audit could not run the audit (exit {run.returncode}): {tail}", file=sys.stderr)
        print(
            "Is the vulnerability service reachable from here? The audit does not pass without it.",
            file=sys.stderr,
        )
        return 2
    verdict = judge(report, allowed)
    audited = sum(1 for d in report.get("dependencies", []) if not d.get("skip_reason"))
    for line in verdict.lines:
        print(f"pip-audit: {line}", file=sys.stderr)
    if verdict.ok:
        print(
            f"pip-audit: {audited} locked dependencies audited, no known vulnerability "
            f"outside {ALLOWLIST.name} ({len(allowed)} allowed)"
        )
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
