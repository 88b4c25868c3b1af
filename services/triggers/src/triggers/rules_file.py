"""Rules as a YAML file, for the CLI that publishes them on `rules.config` and for the backtest.

YAML stays out of the contracts (the console editor speaks JSON). A file holds one site's
mapping (with `site_id`) or `sites: [...]`. Every mistake in the file is reported at once, one
line per error with the file name and the place in the file's structure, so a store owner can
fix a whole file in one go instead of one error per run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from beckon_contracts.rules import SiteRules, describe_errors
from pydantic import ValidationError


class RulesFileError(ValueError):
    """A rules file that can't be used; `problems` holds one readable line per error."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(
            f"{source}: {len(problems)} problem(s) in the rules file:\n"
            + "\n".join(f"  {source}: {p}" for p in problems)
        )


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys (YAML would silently keep the last one,
    e.g. dropping one of two `cart_value:` lines in a condition)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _unique_mapping,  # type: ignore[arg-type]
)


def parse_rules(data: object, source: str = "<rules>") -> list[SiteRules]:
    """Validate already-decoded YAML/JSON: one site mapping, or `{sites: [...]}`."""
    if isinstance(data, dict) and "sites" in data:
        extra = sorted(str(k) for k in data if k != "sites")
        if extra:
            raise RulesFileError(source, [f"unexpected top-level keys next to 'sites': {extra}"])
        entries = data["sites"]
        if not isinstance(entries, list) or not entries:
            raise RulesFileError(source, ["sites: must be a non-empty list of site mappings"])
        located = [(f"sites[{i}]", entry) for i, entry in enumerate(entries)]
    elif isinstance(data, dict):
        located = [("", data)]
    else:
        raise RulesFileError(
            source, ["expected a site mapping (with site_id) or a mapping with 'sites: [...]'"]
        )
    problems: list[str] = []
    sites: list[SiteRules] = []
    seen: dict[str, str] = {}
    for where, entry in located:
        try:
            site = SiteRules.model_validate(entry)
        except ValidationError as exc:
            problems.extend(describe_errors(exc, prefix=where))
            continue
        if site.site_id in seen:
            problems.append(f"{where}.site_id: site {site.site_id!r} also in {seen[site.site_id]}")
            continue
        seen[site.site_id] = where or "(top level)"
        sites.append(site)
    if problems:
        raise RulesFileError(source, problems)
    return sites


def load_rules_text(text: str, source: str = "<rules>") -> list[SiteRules]:
    """Parse and validate rules from YAML (or JSON) text."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RulesFileError(source, [f"{where}invalid YAML: {problem}"]) from None
    return parse_rules(data, source)


def load_rules_file(path: str | Path) -> list[SiteRules]:
    """Read a rules YAML file; raises `RulesFileError` listing every problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesFileError(str(file), [f"cannot read the file: {exc}"]) from None
    return load_rules_text(text, str(file))
