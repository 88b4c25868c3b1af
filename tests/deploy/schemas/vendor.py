"""Turn CustomResourceDefinitions into the JSON Schemas test_validate.py checks custom resources
against: one file per served version, tests/deploy/schemas/<group>/<kind>_<version>.json.

    python tests/deploy/schemas/vendor.py --source "owner/repo@tag (commit)" CRD.yaml [...]

(the README in this folder lists the upstream files, tags and commits.)

What the conversion keeps is what the API server enforces on a create with kubectl's default
`--validate=strict`: the structural schema's types, enums, patterns, bounds and required fields,
and unknown fields are errors (`additionalProperties: false`) except where the CRD says
`x-kubernetes-preserve-unknown-fields: true` or declares a map (`additionalProperties`).
OpenAPI v3.0's `nullable` and boolean `exclusiveMinimum`/`exclusiveMaximum` become their JSON
Schema 2020-12 forms, `x-kubernetes-int-or-string` becomes integer-or-string, and
`x-kubernetes-embedded-resource` objects get apiVersion/kind/metadata. Descriptions and
defaults are dropped (annotations only), and so are CEL rules (`x-kubernetes-validations`): the
API server checks those, this test cannot; the count is kept in the file's `$comment`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DIALECT = "https://json-schema.org/draft/2020-12/schema"
# assertion keywords copied as they are (structural schemas allow nothing fancier)
COPIED = (
    "type",
    "format",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "required",
)
JUNCTORS = ("anyOf", "oneOf", "allOf")


def python_pattern(pattern: str) -> str:
    """A CRD's pattern (Go's RE2) as Python's `re` reads it: inline flags such as `^(?i)` go to
    the front (RE2 allows them anywhere, Python only first); a pattern that still does not
    compile stops the script."""
    moved = re.sub(r"^\^(\(\?[a-zA-Z]+\))", r"\1^", pattern)
    re.compile(moved)
    return moved


def count_rules(node: Any) -> int:
    if isinstance(node, dict):
        own = len(node.get("x-kubernetes-validations", []))
        return own + sum(count_rules(value) for value in node.values())
    if isinstance(node, list):
        return sum(count_rules(item) for item in node)
    return 0


def convert(node: dict[str, Any]) -> dict[str, Any]:
    """One openAPIV3Schema node as JSON Schema 2020-12.

    Branches of anyOf/oneOf/allOf/not are never closed: a structural schema declares no `type`
    in them (they only add value checks to properties declared outside them).
    """
    out: dict[str, Any] = {key: node[key] for key in COPIED if key in node}
    if "pattern" in out:
        out["pattern"] = python_pattern(out["pattern"])
    for bound in ("Minimum", "Maximum"):
        if node.get(f"exclusive{bound}") is True and bound.lower() in node:
            out[f"exclusive{bound}"] = out.pop(bound.lower())
    if node.get("x-kubernetes-int-or-string") and "type" not in node and "anyOf" not in node:
        out["type"] = ["integer", "string"]
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    properties = dict(node.get("properties", {}))
    if node.get("x-kubernetes-embedded-resource"):
        for name in ("apiVersion", "kind"):
            properties.setdefault(name, {"type": "string"})
        properties.setdefault(
            "metadata", {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        )
    if properties:
        out["properties"] = {name: convert(child) for name, child in properties.items()}
    if "items" in node:
        out["items"] = convert(node["items"])
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):
        out["additionalProperties"] = convert(additional)
    elif isinstance(additional, bool):
        out["additionalProperties"] = additional
    elif node.get("type") == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False  # the API server refuses unknown fields
    for junctor in JUNCTORS:
        if junctor in node:
            out[junctor] = [convert(branch) for branch in node[junctor]]
    if "not" in node:
        out["not"] = convert(node["not"])
    if node.get("nullable"):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def version_schema(crd: dict[str, Any], version: dict[str, Any], source: str) -> dict[str, Any]:
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    root = version["schema"]["openAPIV3Schema"]
    schema = convert(root)
    schema.setdefault("properties", {})
    schema["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
    schema["properties"]["kind"] = {"const": kind}
    # ObjectMeta is the API server's own: test_validate.py checks it with the Kubernetes schema
    schema["properties"]["metadata"] = {"type": "object"}
    schema["required"] = sorted({"apiVersion", "kind", "metadata", *schema.get("required", [])})
    rules = count_rules(root)
    return {
        "$schema": DIALECT,
        "$comment": (
            f"{kind} {group}/{version['name']} from the CRD {crd['metadata']['name']} of {source}"
            f", by tests/deploy/schemas/vendor.py; {rules} CEL rule(s) not checked"
        ),
        "x-deprecated": bool(version.get("deprecated")),
        "x-deprecation-warning": version.get("deprecationWarning"),
        **schema,
    }


def vendor(crd_file: Path, source: str, only: set[str] | None, into: Path) -> list[Path]:
    written = []
    for crd in yaml.safe_load_all(crd_file.read_text()):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served") or (only and version["name"] not in only):
                continue
            path = into / group / f"{kind.lower()}_{version['name']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            schema = version_schema(crd, version, source)
            path.write_text(json.dumps(schema, indent=1, ensure_ascii=False) + "\n")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("crds", nargs="+", type=Path, help="CRD YAML files")
    parser.add_argument("--source", required=True, help='e.g. "kedacore/keda@v2.20.2 (68a5b50)"')
    parser.add_argument("--versions", help="comma-separated versions to write (default: served)")
    parser.add_argument("--into", type=Path, default=HERE, help="default: this folder")
    args = parser.parse_args(argv)
    only = set(args.versions.split(",")) if args.versions else None
    for crd_file in args.crds:
        for path in vendor(crd_file, args.source, only, args.into):
            print(path.relative_to(args.into))
    return 0


if __name__ == "__main__":
    sys.exit(main())
