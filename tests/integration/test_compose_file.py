"""docker-compose.yml is a valid compose file (checked by `docker-compose config`,
which needs no Docker daemon), and everything it names exists in the code:
each service's entry point, each VTC_ setting, each file it mounts or runs,
and each upstream Traefik routes to. The same topology as `make run-mesh`:
two metadata replicas, process workers scalable with --scale."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from services.auth_svc.settings import Settings as AuthSettings
from services.metadata_svc.settings import Settings as MetadataSettings
from services.process_svc.settings import Settings as ProcessSettings
from services.upload_svc.settings import Settings as UploadSettings
from tests.conftest import REQUIRE_SERVICES

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
# Installed by `make test` into a venv of its own: docker-compose 1.29 needs PyYAML < 6.
DOCKER_COMPOSE = Path(os.environ.get("VTC_DOCKER_COMPOSE", REPO / ".venv-compose" / "bin" / "docker-compose"))
SETTINGS: dict[str, type[BaseSettings]] = {
    "auth": AuthSettings, "metadata": MetadataSettings, "process": ProcessSettings, "upload": UploadSettings}
IN_IMAGE = Path("/app")  # deploy/Dockerfile copies the repository here


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The file as docker-compose resolves it (anchors, merges, defaults)."""
    if not DOCKER_COMPOSE.exists():
        message = f"docker-compose is not installed at {DOCKER_COMPOSE} (make test installs it)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run([str(DOCKER_COMPOSE), "-f", str(COMPOSE_FILE), "config"], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env={**os.environ, "COMPOSE_PROJECT_NAME": "vtc"})
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


OPTIONAL = {"prometheus", "grafana"}  # profile "observability"


def test_it_runs_the_mesh_topology(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) - OPTIONAL == {
        "traefik", "envoy", "rabbitmq", "postgres", "auth", "upload", "metadata", "process"}
    assert all(services[name]["profiles"] == ["observability"] for name in OPTIONAL & set(services))
    assert services["metadata"]["deploy"]["replicas"] == 2
    assert services["process"]["deploy"]["replicas"] == 2
    for name in ("metadata", "process"):  # --scale needs no fixed name or host port
        assert "container_name" not in services[name] and "ports" not in services[name]


def test_every_entry_point_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        command = service.get("command") or []
        if command[:2] == ["python", "-m"]:
            module = command[2]
            assert importlib.util.find_spec(f"{module}.__main__") is not None, f"{name}: no module {module}"
        if command and command[0] == "envoy":
            config = Path(command[command.index("-c") + 1])
            assert (REPO / config.relative_to(IN_IMAGE)).is_file(), f"{name}: no {config}"
        test = service.get("healthcheck", {}).get("test", [])
        if "deploy/healthcheck.py" in test:
            assert (REPO / "deploy" / "healthcheck.py").is_file()


def test_every_setting_is_read_by_the_service_it_is_given_to(compose: dict[str, Any]) -> None:
    for name, settings in SETTINGS.items():
        environment = compose["services"][name]["environment"]
        fields = {f"VTC_{field.upper()}" for field in settings.model_fields}
        unknown = sorted(k for k in environment if k.startswith("VTC_") and k not in fields)
        assert not unknown, f"{name} is given settings it does not have: {unknown}"
        if "VTC_METADATA_FILES_PORT" in environment:
            from gateway.envoy_config import COMPOSE_FILES
            assert f"{name}:{environment['VTC_METADATA_FILES_PORT']}" == COMPOSE_FILES
        for peer in ("auth", "metadata", "process"):
            address = environment.get(f"VTC_{peer.upper()}_ADDR")
            if address:
                assert address.split(":")[0] == peer and address.endswith(":" + environment["VTC_GRPC_PORT"])


def test_mounts_and_build_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            assert (Path(build["context"]) / build.get("dockerfile", "Dockerfile")).is_file(), name
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith(("/", ".")):
                assert Path(source).exists(), f"{name} mounts {source}, which does not exist"


def test_traefik_routes_to_services_of_the_file(compose: dict[str, Any]) -> None:
    dynamic = yaml.safe_load((REPO / "gateway" / "traefik" / "dynamic" / "vtc.yml").read_text())
    for backend in dynamic["http"]["services"].values():
        for server in backend["loadBalancer"]["servers"]:
            host = re.match(r"^\w+://([^:/]+)", server["url"]).group(1)  # type: ignore[union-attr]
            assert host in compose["services"], f"Traefik routes to {host}, not a compose service"


def test_prometheus_scrapes_every_service_where_it_serves_its_metrics(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounted = [v["source"] if isinstance(v, dict) else v.split(":")[0] for v in services["prometheus"]["volumes"]]
    assert str(REPO / "deploy" / "prometheus") in mounted
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    scraped: dict[str, int] = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.split(":")
                scraped[host] = int(port)
        for dns in job.get("dns_sd_configs", []):
            for name in dns["names"]:
                scraped[name] = int(dns["port"])
    for name in SETTINGS:
        assert scraped.get(name) == int(services[name]["environment"]["VTC_METRICS_PORT"]), name
