"""Render a kustomization with the pinned kustomize (`make kustomize` builds it)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
VERSION = "v5.5.0"  # the Makefile's KUSTOMIZE_VERSION
BINARY = Path(os.environ.get("KUSTOMIZE", ROOT / ".tools" / f"kustomize-{VERSION}"))


def kustomize_text(directory: Path) -> str:
    """`kustomize build directory`; a missing binary is an error that says how to get it."""
    if not BINARY.is_file():
        raise FileNotFoundError(
            f"kustomize {VERSION} is not at {BINARY}: run `make kustomize` (needs go), "
            "or point KUSTOMIZE at a kustomize binary"
        )
    done = subprocess.run(
        [str(BINARY), "build", str(directory)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise AssertionError(f"kustomize build {directory} failed:\n{done.stderr}")
    if done.stderr.strip():  # kustomize warns on stderr (deprecated fields and the like)
        raise AssertionError(f"kustomize build {directory} warned:\n{done.stderr}")
    return done.stdout


def kustomize(directory: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(kustomize_text(directory)) if doc]
