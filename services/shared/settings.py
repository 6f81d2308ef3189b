"""Settings every service reads. Each service subclasses CommonSettings with
its own fields; all read environment variables prefixed VTC_ (field
`bus_url` <- VTC_BUS_URL). Documented in docs/configuration.md."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.shared.tls import TlsFiles


class MissingSetting(Exception):
    """A setting a service cannot start without; the message names it."""


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VTC_", frozen=True, extra="ignore")

    data_dir: Path = Field(Path("var"), description="Where embedded backends keep their files (DBs, objects, keys).")
    grpc_host: str = Field("127.0.0.1", description="Interface the gRPC server listens on.")
    grpc_port: int = Field(50051, description="gRPC port; 0 picks a free one.")
    # Peers have no default: a service started alone without one fails at start naming
    # the setting (see require_peer), rather than calling whatever listens on a guess.
    auth_addr: str = Field(
        "", description="host:port of the auth service (JWKS, service tokens); needed by metadata, process, upload.")
    metadata_addr: str = Field("", description="host:port of the metadata service; needed by upload.")
    process_addr: str = Field(
        "", description="host:port of the process service (profile catalogue), or several as host:port,host:port "
                        "(balanced, skipping those down); needed by upload.")
    bus_url: str = Field("memory://", description="Event bus: memory:// (in-process) or amqp://user:pass@host:5672/.")
    bus_namespace: str = Field(
        "vtc", description="Prefix of every exchange and queue on the broker; deployments sharing one differ here.")
    bus_max_deliveries: int = Field(
        5, ge=1, description="Deliveries of a message (a job) before the broker dead-letters it.")
    storage_url: str = Field(
        "", description="Object storage: file:///abs/dir, or b2://bucket; empty: <data_dir>/objects.")
    process_profiles_dir: Path | None = Field(
        None, description="Folder with index.yaml and the profile files; empty: the built-in profiles. The "
                          "workers run them; metadata checks a Retranscode's profile name against them.")
    download_base_url: str = Field(
        "", description="Where clients reach the REST gateway, for the signed playback URLs (<this>/play/...) "
                        "and the local store's download URLs (<this>/files/...); empty: http://127.0.0.1:8080, "
                        "or the all-in-one's own gateway.")
    url_signing_key: SecretStr = Field(
        SecretStr(""), description="Secret (16+ bytes) signing playback and download URLs, the same for "
                                   "every metadata replica; empty: <data_dir>/keys/url-signing.key, made once.")
    b2_key_id: str = Field("", description="Backblaze B2 application key ID (b2:// storage).")
    b2_application_key: SecretStr = Field(
        SecretStr(""), description="That B2 key's secret (b2:// storage); it needs read, write, delete and share.")
    b2_large_file_threshold_bytes: int = Field(
        200 * 1024 * 1024, description="Files this large or larger go to B2 with its large-file API, in parts "
                                       "of half this size (B2's minimum part: 5 MB).")
    service_api_key: str = Field(
        "", description="This service's API key for calls to peers; empty: read <data_dir>/keys/service.key.")
    token_keys_refresh_seconds: float = Field(
        30.0, gt=0, description="How old the auth service's key set (signing keys, revocations) may get before "
                                "a token is checked against a fresh one; bus events refresh it at once.")
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate chain: the gRPC server serves TLS only, and peer calls present it.")
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_ca_file: Path | None = Field(
        None, description="PEM CA: the server requires client certificates it signed (mutual TLS); "
        "peers' certificates are checked against it.")
    log_level: str = Field("INFO", description="Log level of the JSON logs on stdout.")
    metrics_host: str = Field("", description="Interface the Prometheus /metrics endpoint binds; empty: VTC_GRPC_HOST.")
    metrics_port: int = Field(
        0, ge=-1, description="Port of the Prometheus /metrics endpoint, one per process (the all-in-one serves all "
                              "four services' there); 0 picks a free one (logged, and printed by make run), "
                              "-1 serves none. Containers use 9464.")
    shutdown_grace_seconds: float = Field(10.0, description="How long in-flight calls may finish on shutdown.")
    readiness_interval_seconds: float = Field(
        2.0, gt=0, description="How often gRPC health re-checks the peers, database and broker a service needs.")

    def require_peer(self, field: str) -> str:
        """The address in `field` (e.g. "auth_addr"); MissingSetting when it is empty."""
        value = str(getattr(self, field))
        if not value:
            description = type(self).model_fields[field].description or ""
            raise MissingSetting(f"VTC_{field.upper()} is not set: give the {description.split(';')[0]}")
        return value

    @model_validator(mode="after")
    def _tls_key_pair(self) -> CommonSettings:
        self.tls  # noqa: B018 - raises on a certificate without its key
        return self

    @property
    def tls(self) -> TlsFiles:
        return TlsFiles(self.tls_cert_file, self.tls_key_file, self.tls_ca_file)

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.data_dir / "objects").resolve().as_uri()

    def read_service_api_key(self) -> str:
        if self.service_api_key:
            return self.service_api_key
        path = self.keys_dir / "service.key"
        try:
            return path.read_text().strip()
        except FileNotFoundError as error:
            raise RuntimeError(
                f"no service API key: set VTC_SERVICE_API_KEY or start the auth service first (it writes {path})"
            ) from error
