"""The Azure Container Instances template (ARM JSON) for vtc, built from what
the repository already says, so it cannot drift from it:

- the image is deploy/Dockerfile's (one image, one command per service), the
  Traefik image is docker-compose.yml's;
- Traefik's config is gateway/traefik/ with compose's host names turned into
  the container group's shared localhost and each service's own port;
- Envoy's config is made when its container starts, by the same
  `python -m gateway.envoy_config` that `make run` uses.

    python deploy/azure/aci_template.py > deploy/azure/vtc-aci.json

(tests/unit/test_azure_template.py checks the committed file is current and
that every setting it names is one the services read.)

A container group shares one network namespace, so the four services listen
on 127.0.0.1, each on a port of its own, and only Traefik's 80/443 are public.
RabbitMQ, PostgreSQL and B2 are outside the group: their URLs and keys are
parameters of type securestring, passed to the containers as secure
environment variables (never shown by `az container show`).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"

# Each service's gRPC port inside the group (VTC_GRPC_PORT), and the others.
GRPC_PORTS = {"auth": 50051, "metadata": 50052, "process": 50053, "upload": 50054}
# Each service's Prometheus endpoint (VTC_METRICS_PORT), inside the group only: scrape it
# from a collector container added to the group, or read the JSON logs in Log Analytics.
METRICS_PORTS = {"auth": 9464, "metadata": 9465, "process": 9466, "upload": 9467}
ENVOY_PORT = 8080
FILES_PORT = 8081  # metadata's signed file server, behind Envoy's /play/ and /files/ routes
EDGE_PORTS = (80, 443)
DATA_DIR = "/var/lib/vtc"

# compose host:port (gateway/traefik/dynamic/vtc.yml) -> the same thing inside the group
COMPOSE_TO_GROUP = {
    "envoy:8080": f"{LOOPBACK}:{ENVOY_PORT}",
    **{f"{name}:50051": f"{LOOPBACK}:{port}" for name, port in GRPC_PORTS.items()},
}

# CPU cores and GiB per container: the group's total stays within ACI's 4 cores / 16 GB.
RESOURCES = {
    "auth": (0.25, 0.5), "metadata": (0.5, 1.0), "upload": (0.5, 1.0), "process": (2.0, 4.0),
    "envoy": (0.25, 0.5), "traefik": (0.25, 0.5),
}


def _param(name: str) -> str:
    return f"[parameters('{name}')]"


def _plain(name: str, value: str | int) -> dict[str, str]:
    return {"name": name, "value": str(value)}


def _secure(name: str, parameter: str) -> dict[str, str]:
    return {"name": name, "secureValue": _param(parameter)}


def _common_environment(service: str) -> list[dict[str, str]]:
    return [
        _plain("VTC_DATA_DIR", DATA_DIR),
        _plain("VTC_GRPC_HOST", LOOPBACK),
        _plain("VTC_GRPC_PORT", GRPC_PORTS[service]),
        _plain("VTC_METRICS_PORT", METRICS_PORTS[service]),
        *(_plain(f"VTC_{name.upper()}_ADDR", f"{LOOPBACK}:{port}")
          for name, port in GRPC_PORTS.items() if name != "upload"),
        _plain("VTC_LOG_LEVEL", "INFO"),
        _secure("VTC_BUS_URL", "busUrl"),
        {"name": "VTC_STORAGE_URL", "value": "[concat('b2://', parameters('b2Bucket'))]"},
        _secure("VTC_B2_KEY_ID", "b2KeyId"),
        _secure("VTC_B2_APPLICATION_KEY", "b2ApplicationKey"),
        _secure("VTC_URL_SIGNING_KEY", "urlSigningKey"),
        {"name": "VTC_DOWNLOAD_BASE_URL", "value": "[variables('publicBaseUrl')]"},
    ]


def _service_environment(service: str) -> list[dict[str, str]]:
    extra = {
        "auth": [_secure("VTC_AUTH_DATABASE_URL", "authDatabaseUrl")],
        "metadata": [_secure("VTC_METADATA_DATABASE_URL", "metadataDatabaseUrl"),
                     _plain("VTC_METADATA_FILES_PORT", FILES_PORT)],
        "process": [],
        "upload": [],
    }[service]
    return _common_environment(service) + extra


def _resources(name: str) -> dict[str, Any]:
    cpu, memory = RESOURCES[name]
    return {"requests": {"cpu": cpu, "memoryInGB": memory}}


def _health_probe(service: str) -> dict[str, Any]:
    """deploy/healthcheck.py, as compose and the Dockerfile's HEALTHCHECK run it."""
    return {"exec": {"command": ["python", "deploy/healthcheck.py", "grpc", f"{LOOPBACK}:{GRPC_PORTS[service]}"]},
            "initialDelaySeconds": 20, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 5}


def _service_container(service: str) -> dict[str, Any]:
    return {
        "name": service,
        "properties": {
            "image": _param("image"),
            "command": ["python", "-m", f"services.{service}_svc"],
            "environmentVariables": _service_environment(service),
            "resources": _resources(service),
            # auth writes service.key here at its first start; the others read it.
            "volumeMounts": [{"name": "keys", "mountPath": f"{DATA_DIR}/keys"}],
            "readinessProbe": _health_probe(service),
            "livenessProbe": _health_probe(service),
        },
    }


def envoy_command() -> list[str]:
    """Envoy's config is written at start by the code `make run` uses, then Envoy replaces the shell."""
    generate = " ".join([
        "python -m gateway.envoy_config",
        *(f"--{name} {LOOPBACK}:{port}" for name, port in GRPC_PORTS.items()),
        f"--files {LOOPBACK}:{FILES_PORT}",
        f"--listen {LOOPBACK}:{ENVOY_PORT}",
        "--descriptor /app/gateway/vtc.pb",
        "--admin-socket /tmp/envoy-admin.sock",
        "> /tmp/envoy.yaml",
    ])
    return ["sh", "-c", f"{generate} && exec envoy -c /tmp/envoy.yaml --disable-hot-restart --log-level warn"]


def _envoy_container() -> dict[str, Any]:
    return {
        "name": "envoy",
        "properties": {
            "image": _param("image"),
            "command": envoy_command(),
            "resources": _resources("envoy"),
            "readinessProbe": {"exec": {"command": ["python", "deploy/healthcheck.py", "envoy-admin",
                                                    "/tmp/envoy-admin.sock"]},
                               "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 5},
        },
    }


def traefik_dynamic_config() -> dict[str, Any]:
    """gateway/traefik/dynamic/vtc.yml with compose's host names replaced by the group's addresses."""
    config = yaml.safe_load((ROOT / "gateway/traefik/dynamic/vtc.yml").read_text())
    for name, service in config["http"]["services"].items():
        for server in service["loadBalancer"]["servers"]:
            scheme, _, address = server["url"].partition("://")
            if address not in COMPOSE_TO_GROUP:
                raise ValueError(f"Traefik service {name} points at {address}: add it to COMPOSE_TO_GROUP")
            server["url"] = f"{scheme}://{COMPOSE_TO_GROUP[address]}"
    return config


def traefik_image() -> str:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose["services"]["traefik"]["image"]


def _secret_file(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _traefik_container() -> dict[str, Any]:
    return {
        "name": "traefik",
        "properties": {
            "image": _param("traefikImage"),
            "command": ["traefik", "--configFile=/etc/traefik-static/traefik.yml"],
            "ports": [{"protocol": "TCP", "port": port} for port in EDGE_PORTS],
            "resources": _resources("traefik"),
            "volumeMounts": [
                {"name": "traefik-static", "mountPath": "/etc/traefik-static", "readOnly": True},
                {"name": "traefik-dynamic", "mountPath": "/etc/traefik/dynamic", "readOnly": True},
            ],
        },
    }


def _volumes() -> list[dict[str, Any]]:
    dynamic = {"vtc.yml": _secret_file(yaml.safe_dump(traefik_dynamic_config(), sort_keys=False)),
               "tls.yml": _secret_file((ROOT / "gateway/traefik/dynamic/tls.yml").read_text())}
    return [
        {"name": "keys", "emptyDir": {}},
        {"name": "traefik-static", "secret": {"traefik.yml": _secret_file((ROOT / "gateway/traefik/traefik.yml")
                                                                           .read_text())}},
        {"name": "traefik-dynamic", "secret": dynamic},
    ]


def _parameters() -> dict[str, Any]:
    def text(description: str, default: str | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": "string", "metadata": {"description": description}}
        if default is not None:
            spec["defaultValue"] = default
        return spec

    def secret(description: str) -> dict[str, Any]:
        return {"type": "securestring", "metadata": {"description": description}}

    return {
        "name": text("The container group's name.", "vtc"),
        "location": text("Azure region.", "[resourceGroup().location]"),
        "dnsNameLabel": text("DNS label: the API is at http://<label>.<region>.azurecontainer.io"),
        "image": text("The vtc image (deploy/Dockerfile), as CI publishes it on a tag.", "ghcr.io/OWNER/vtc:latest"),
        "traefikImage": text("Traefik, the version docker-compose.yml runs.", traefik_image()),
        "busUrl": secret("RabbitMQ: amqps://user:password@host:5671/vhost"),
        "authDatabaseUrl": secret("Azure Database for PostgreSQL, auth's database: "
                                  "postgresql+asyncpg://user:password@server.postgres.database.azure.com:5432/vtc_auth"
                                  "?ssl=require"),
        "metadataDatabaseUrl": secret("The same server, metadata's database: .../vtc_metadata?ssl=require"),
        "b2Bucket": text("Backblaze B2 bucket holding sources and outputs."),
        "b2KeyId": secret("B2 application key id (read, write, delete, share on the bucket)."),
        "b2ApplicationKey": secret("B2 application key."),
        "urlSigningKey": secret("Secret that signs download and playback URLs (32+ random bytes, base64)."),
    }


def template() -> dict[str, Any]:
    containers = [_service_container(s) for s in ("auth", "metadata", "process", "upload")]
    containers += [_envoy_container(), _traefik_container()]
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {"description": "vtc on Azure Container Instances. Generated by deploy/azure/aci_template.py; "
                                    "do not edit by hand."},
        "parameters": _parameters(),
        "variables": {
            "publicBaseUrl": "[format('http://{0}.{1}.azurecontainer.io', parameters('dnsNameLabel'), "
                             "parameters('location'))]",
        },
        "resources": [{
            "type": "Microsoft.ContainerInstance/containerGroups",
            "apiVersion": "2023-05-01",
            "name": _param("name"),
            "location": _param("location"),
            "properties": {
                "osType": "Linux",
                "restartPolicy": "Always",
                "containers": containers,
                "volumes": _volumes(),
                "ipAddress": {
                    "type": "Public",
                    "dnsNameLabel": _param("dnsNameLabel"),
                    "ports": [{"protocol": "TCP", "port": port} for port in EDGE_PORTS],
                },
            },
        }],
        "outputs": {
            "restUrl": {"type": "string", "value": "[variables('publicBaseUrl')]"},
        },
    }


def render() -> str:
    return json.dumps(template(), indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
