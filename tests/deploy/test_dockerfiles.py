"""Each service's image is built the same way: base images pinned by digest, the locked
third-party dependencies in a layer of their own before the source is copied, the workspace
synced without dev tools for that one package, OCI labels, a non-root user, the server's port
exposed, health-checked and set, and `python -m <service>` as the command; the build context
(.dockerignore) holds nothing else; `make images` builds all five, or says Docker is missing."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(
    path.parent.name
    for path in (ROOT / "services").glob("*/pyproject.toml")
    if (path.parent / "src" / path.parent.name / "__main__.py").is_file()
)
DIGEST = re.compile(r"^(?P<name>[\w./-]+):(?P<tag>[\w.-]+)@sha256:(?P<digest>[0-9a-f]{64})$")
OCI_LABELS = ("title", "version", "revision", "source", "licenses")


def test_every_service_is_found():
    assert {"tracker", "triggers", "chat", "leads", "notifier"} <= set(SERVICES)


def instructions(dockerfile: Path) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def global_args(lines: list[str]) -> dict[str, str]:
    """`ARG NAME=value` before the first FROM (the ones a FROM line may use)."""
    args = {}
    for line in lines:
        if line.startswith("FROM "):
            break
        if line.startswith("ARG ") and "=" in line:
            name, _, value = line[4:].partition("=")
            args[name] = value
    return args


def base_images(lines: list[str]) -> list[str]:
    """Every image the build pulls: FROM lines (ARGs resolved) and `COPY --from=<image>`."""
    args = global_args(lines)
    stages = set()
    images = []
    for line in lines:
        if line.startswith("FROM "):
            words = line.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], words[1])
            if image not in stages:
                images.append(image)
            if len(words) == 4 and words[2].upper() == "AS":
                stages.add(words[3])
        copy_from = re.match(r"COPY --from=(\S+) ", line)
        if copy_from and copy_from[1] not in stages:
            images.append(copy_from[1])
    return images


def final_stage(lines: list[str]) -> list[str]:
    last = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    return lines[last:]


def workspace_members() -> list[str]:
    """The workspace members' directories (root pyproject's globs), as the lock knows them."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for path in sorted(ROOT.glob(pattern)):
            if (path / "pyproject.toml").is_file():
                members.append(path.relative_to(ROOT).as_posix())
    return members


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_an_image_like_the_others(service):
    dockerfile = ROOT / "services" / service / "Dockerfile"
    assert dockerfile.is_file(), f"services/{service} has no Dockerfile"
    lines = instructions(dockerfile)
    assert "FROM ${PYTHON_IMAGE} AS build" in lines
    assert "COPY --from=uv /uv /usr/local/bin/uv" in lines
    assert f"RUN uv sync --locked --no-dev --no-editable --package {service}" in lines
    final = final_stage(lines)
    assert final[0] == "FROM ${PYTHON_IMAGE}"
    assert "COPY --from=build /app/.venv /app/.venv" in final
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


@pytest.mark.parametrize("service", SERVICES)
def test_base_images_are_pinned_by_digest(service):
    lines = instructions(ROOT / "services" / service / "Dockerfile")
    images = base_images(lines)
    assert any(image.startswith("python:3.11-slim@") for image in images), images
    for image in images:
        assert DIGEST.match(image), f"{service}: {image} is not pinned as name:tag@sha256:..."


def test_every_image_pins_the_same_digests():
    """One python and one uv for all five: bumping one Dockerfile alone is caught here."""
    pins: dict[str, set[str]] = {}
    for service in SERVICES:
        for image in base_images(instructions(ROOT / "services" / service / "Dockerfile")):
            match = DIGEST.match(image)
            assert match, image
            pins.setdefault(match["name"], set()).add(image)
    assert {name: len(images) for name, images in pins.items()} == dict.fromkeys(pins, 1), pins


@pytest.mark.parametrize("service", SERVICES)
def test_dependencies_are_a_layer_before_the_source(service):
    """The locked third-party packages are synced with only the lock and the workspace's
    pyproject.toml files copied: a source change re-uses that layer instead of reinstalling."""
    lines = instructions(ROOT / "services" / service / "Dockerfile")
    syncs = [i for i, line in enumerate(lines) if line.startswith("RUN uv sync ")]
    assert len(syncs) == 2, f"{service}: want a dependency sync and a project sync"
    dependencies, project = syncs
    assert lines[dependencies] == (
        f"RUN uv sync --locked --no-dev --no-editable --no-install-workspace --package {service}"
    )
    start = max(i for i in range(dependencies) if lines[i].startswith("FROM "))
    copied = [  # from the build context (COPY --from copies from an image or a stage)
        line.split()[1:]
        for line in lines[start:dependencies]
        if line.startswith("COPY ") and not line.startswith("COPY --from=")
    ]
    sources = [source for *sources, _ in copied for source in sources]
    for source in sources:
        assert source in ("pyproject.toml", "uv.lock") or source.endswith("/pyproject.toml"), (
            f"{service} copies {source} before its dependency layer"
        )
    # --locked needs every member's pyproject.toml: a new member must be copied here too
    members = {source.removesuffix("/pyproject.toml") for source in sources}
    assert set(workspace_members()) <= members, set(workspace_members()) - members
    assert {"pyproject.toml", "uv.lock"} <= set(sources)
    # the source comes after, then the project sync
    after = [line for line in lines[dependencies:project] if line.startswith("COPY ")]
    assert f"COPY services/{service} services/{service}" in after
    assert "COPY libs libs" in after


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_runs_as_a_user_without_privileges(service):
    final = final_stage(instructions(ROOT / "services" / service / "Dockerfile"))
    [user] = [line.split()[1] for line in final if line.startswith("USER ")]
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), f"{service} runs as {user}: a numeric uid lets Kubernetes check it"
    assert int(uid) >= 10000, f"{service} runs as {user}: outside the host's system users"
    assert gid == uid, f"{service}: give the group too (USER {uid}:{uid})"
    assert any(f"useradd --uid {uid}" in line for line in final)
    assert final.index(f"USER {user}") < final.index(final[-1])  # before CMD


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_carries_oci_labels(service):
    final = final_stage(instructions(ROOT / "services" / service / "Dockerfile"))
    labels = dict(re.findall(r'org\.opencontainers\.image\.(\w+)="([^"]*)"', " ".join(final)))
    missing = set(OCI_LABELS) - labels.keys()
    assert not missing, f"{service}: no org.opencontainers.image.{sorted(missing)}"
    assert labels["title"] == service
    args = {
        line[4:].partition("=")[0]: line[4:].partition("=")[2]
        for line in final
        if line.startswith("ARG ")
    }
    # what changes per build comes from build args (`make images` fills them in)
    for label, arg in {"version": "VERSION", "revision": "REVISION", "source": "SOURCE"}.items():
        assert labels[label] == f"${{{arg}}}", f"{service}: {label} is not from a build arg"
        assert arg in args, f"{service}: no ARG {arg} in the final stage"


# ---- the build context --------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as Docker reads it: (is an exception, pattern), later lines winning."""
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line.removeprefix("!").strip().strip("/")
        regex = ""
        for part in re.split(r"(\*\*/?|\*|\?|\[[^\]]*\])", line):
            if part == "**/":
                regex += "(?:.*/)?"
            elif part == "**":
                regex += ".*"
            elif part == "*":
                regex += "[^/]*"
            elif part == "?":
                regex += "[^/]"
            elif part.startswith("["):
                regex += part  # a character class, as in Go's filepath.Match
            else:
                regex += re.escape(part)
        patterns.append((negated, re.compile(regex)))
    return patterns


def in_context(path: str) -> bool:
    """Is this file sent to the builder? A pattern matches a path or any of its parents."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negated, pattern in dockerignore_patterns():
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            included = negated
    return included


LEFT_OUT = [
    ".git/HEAD",
    ".venv/bin/python",
    ".tools/kustomize-v5.5.0",
    ".dev/triggers/v1/state",
    ".ci/run",
    "node_modules/eslint/package.json",
    ".pytest_cache/v/cache/nodeids",
    ".mypy_cache/3.11/chat/main.data.json",
    ".ruff_cache/content",
    ".hypothesis/examples/x",
    ".env",
    ".env.example",
    "tests/e2e/conftest.py",
    "services/chat/tests/unit/test_config.py",
    "libs/contracts/tests/test_envelope.py",
    "tools/devstack/tests/test_kafka.py",
    "tools/devstack/src/beckon_devstack/kafka.py",
    "services/chat/src/chat/__pycache__/main.cpython-311.pyc",
    "services/chat/.venv/bin/python",
    "libs/edge/src/beckon_edge.egg-info/PKG-INFO",
    "bench/tracker.py",
    "docs/operations.md",
    "deploy/base/kustomization.yaml",
    "test-results/trace.zip",
    "package.json",
    "docker-compose.yml",
    "Makefile",
]


@pytest.mark.parametrize("path", LEFT_OUT)
def test_the_build_context_leaves_out(path):
    assert not in_context(path), f"{path} would be sent to the image builder"


def test_the_build_context_holds_what_the_dockerfiles_copy():
    needed = ["pyproject.toml", "uv.lock"]
    needed += [f"{member}/pyproject.toml" for member in workspace_members()]
    for base in ("libs", "services"):
        needed += [
            path.relative_to(ROOT).as_posix()
            for path in (ROOT / base).glob("*/src/**/*")
            if path.is_file() and "__pycache__" not in path.parts
        ]
    assert len(needed) > 50
    left_out = [path for path in needed if not in_context(path)]
    assert not left_out, f"the images need {left_out[:10]}"


def test_the_matcher_reads_dockerignore_as_docker_does():
    """The reader above: a later exception re-includes, `**` spans directories."""
    assert in_context("services/chat/src/chat/main.py")
    assert not in_context("services/chat/tests/conftest.py")
    assert not in_context("README.md")


# ---- make images --------------------------------------------------------------------------


def make_images(tmp_path: Path, docker: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "images", f"DOCKER={docker}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_images_says_docker_is_missing(tmp_path):
    done = make_images(tmp_path, str(tmp_path / "no-docker-here"))
    assert done.returncode != 0
    assert "docker is missing" in done.stdout + done.stderr
    assert "nothing was built" in done.stdout + done.stderr


def test_make_images_builds_the_five_with_their_labels(tmp_path):
    calls = tmp_path / "calls"
    docker = tmp_path / "docker"
    docker.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    docker.chmod(0o755)
    done = make_images(tmp_path, str(docker))
    assert done.returncode == 0, done.stderr
    builds = calls.read_text().splitlines()
    assert len(builds) == len(SERVICES)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for service, build in zip(sorted(SERVICES), sorted(builds), strict=True):
        words = build.split()
        assert words[0] == "build"
        assert f"services/{service}/Dockerfile" in words
        assert f"{service}:{version}" in words
        assert f"{service}:latest" in words  # what docker-compose.yml runs
        assert f"VERSION={version}" in words
        [revision] = [w.partition("=")[2] for w in words if w.startswith("REVISION=")]
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", revision), revision
        assert any(w.startswith("SOURCE=") for w in words)
        source = next(w for w in words if w.startswith("SOURCE="))
        assert not re.search(r"://[^/@]*@", source), "credentials in the source label"
        assert words[-1] == "."
