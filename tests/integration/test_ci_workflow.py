"""The CI/CD workflow (.github/workflows/ci.yml) and the image it builds: the
workflow is valid against GitHub's schema, runs the tests only through
.ci/run, builds deploy/Dockerfile, checks the compose file, and publishes
images only on a version tag; the image is small and runs as a non-root user
with a gRPC health check."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def _runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def _uses(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if "uses" in step]


def test_the_workflow_is_valid_for_github_actions() -> None:
    checked = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                              "vendor.github-workflows", str(WORKFLOW)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_tests_run_only_through_ci_run(workflow: dict[str, Any]) -> None:
    test = workflow["jobs"]["test"]
    runs = _runs(test)
    assert runs[-1].strip() == ".ci/run"
    for command in runs:
        assert not re.search(r"\b(pytest|make test)\b", command), command  # .ci/run is the one source
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert "VTC_REQUIRE_SERVICES=1" in ci_run and re.search(r"^make test\b", ci_run, re.M)
    assert test["timeout-minutes"] <= 90


def test_it_runs_on_pushes_pull_requests_and_version_tags(workflow: dict[str, Any]) -> None:
    triggers = workflow[True] if True in workflow else workflow["on"]  # PyYAML reads `on:` as True
    assert "pull_request" in triggers and triggers["push"]["tags"] == ["v*"]


def test_the_image_is_built_from_the_dockerfile_and_compose_is_checked(workflow: dict[str, Any]) -> None:
    image = workflow["jobs"]["image"]
    assert image["needs"] == "test"
    builds = [s["with"] for s in _uses(image) if s["uses"].startswith("docker/build-push-action")]
    assert [b["file"] for b in builds] == ["deploy/Dockerfile"] and DOCKERFILE.exists()
    assert not any(b.get("push") for b in builds)
    commands = "\n".join(_runs(image))
    assert "docker compose config" in commands and "docker compose build" in commands
    assert "healthcheck.py grpc" in commands and "id -u" in commands


def test_images_are_published_only_on_a_version_tag(workflow: dict[str, Any]) -> None:
    for name, job in workflow["jobs"].items():
        pushes = [s for s in _uses(job) if s["uses"].startswith("docker/build-push-action") and s["with"].get("push")]
        if name != "publish":
            assert not pushes, name
    publish = workflow["jobs"]["publish"]
    assert publish["if"] == "startsWith(github.ref, 'refs/tags/v')" and publish["needs"] == "image"
    assert publish["permissions"]["packages"] == "write"
    assert workflow["permissions"] == {"contents": "read"}  # everything else reads only
    [push] = [s["with"] for s in _uses(publish) if s["uses"].startswith("docker/build-push-action")]
    assert push["file"] == "deploy/Dockerfile" and push["push"] is True
    assert workflow["env"]["IMAGE"].startswith("ghcr.io/")
    azure_image = yaml.safe_load((ROOT / "deploy" / "azure" / "vtc-aci.json").read_text())
    assert azure_image["parameters"]["image"]["defaultValue"].startswith("ghcr.io/")


def test_the_dockerfile_is_slim_non_root_and_health_checked() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines() if line.strip() and
             not line.lstrip().startswith("#")]
    assert lines[0].startswith("FROM python:3.11-slim")
    user = max(i for i, line in enumerate(lines) if line.startswith("USER "))
    assert lines[user].split()[1] not in ("root", "0")
    assert not any(line.startswith("RUN ") for line in lines[user:]), "nothing runs as root after USER"
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert any("deploy/healthcheck.py\", \"grpc\"" in line for line in lines)
    assert "PIP_NO_CACHE_DIR=1" in DOCKERFILE.read_text()  # no pip cache in the layers
