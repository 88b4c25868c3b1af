"""Each service's image is built the same way: one base image, uv from its pinned image, the
locked workspace synced without dev tools for that one package, a non-root user, the server's
port exposed, health-checked and set, and `python -m <service>` as the command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(
    path.parent.name
    for path in (ROOT / "services").glob("*/pyproject.toml")
    if (path.parent / "src" / path.parent.name / "__main__.py").is_file()
)


def test_every_service_is_found():
    assert {"tracker", "triggers", "chat", "leads", "notifier"} <= set(SERVICES)


def instructions(dockerfile: Path) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_an_image_like_the_others(service):
    dockerfile = ROOT / "services" / service / "Dockerfile"
    assert dockerfile.is_file(), f"services/{service} has no Dockerfile"
    lines = instructions(dockerfile)
    assert lines[0] == "FROM python:3.11-slim AS build"
    assert "COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /usr/local/bin/uv" in lines
    assert f"RUN uv sync --locked --no-dev --no-editable --package {service}" in lines
    assert "FROM python:3.11-slim" in lines
    assert "COPY --from=build /app/.venv /app/.venv" in lines
    assert "USER 10001" in lines
    assert lines[-1] == f'CMD ["python", "-m", "{service}"]'
    [exposed] = [line.split()[1] for line in lines if line.startswith("EXPOSE ")]
    [env] = [line for line in lines if line.startswith("ENV PATH=")]
    prefix = service.upper()
    assert f"{prefix}_PORT={exposed}" in env
    assert f"{prefix}_HOST=0.0.0.0" in env
    assert f"{prefix}_ENVIRONMENT=production" in env
    assert f"OTEL_SERVICE_NAME={service}" in env
    [check] = [line for line in lines if line.startswith("HEALTHCHECK ")]
    assert f"http://127.0.0.1:{exposed}/healthz" in check
