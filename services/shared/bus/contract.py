"""The bus contract: the one place that names the exchange, the routing keys
and the queues every service uses.

Names here are logical. A deployment's namespace (setting `bus_namespace`)
prefixes every exchange and queue it declares on the broker, so two
deployments, or two test runs, on one RabbitMQ never share a queue:

    namespace "vtc" -> exchange "vtc.events", queue "vtc.process.jobs",
                       dead letters in "vtc.process.jobs.dead-letter"

Who publishes what (message types in proto/vtc/v1/events.proto):

    job.requested           JobRequested   metadata (outbox relay) -> process.jobs
    job.event.<kind>        JobEvent       process -> metadata.job-events
    job.cancel              JobCancelRequested  metadata -> every worker (broadcast)
    metadata.watch          JobWatchUpdate      metadata -> every metadata replica (broadcast)
    auth.api_key.revoked    ApiKeyRevoked  auth -> every service (broadcast)
    auth.signing_keys.changed  SigningKeysChanged  auth -> every service (broadcast)

Broadcasts are published with mandatory=False: nobody listening is no error.

A publisher declares the queues its messages must reach (Bus.declare) before
publishing, so a message published before its consumer ever started waits in
the queue instead of being dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

JOB_REQUESTED = "job.requested"
JOB_EVENTS = "job.event.#"
JOB_CANCEL = "job.cancel"
METADATA_WATCH = "metadata.watch"
API_KEY_REVOKED = "auth.api_key.revoked"
SIGNING_KEYS_CHANGED = "auth.signing_keys.changed"

DEFAULT_NAMESPACE = "vtc"
_NAMESPACE = re.compile(r"[a-z0-9][a-z0-9_-]*(\.[a-z0-9_-]+)*")


# Every process that listens gets its own copy; nobody listening is no error.
BROADCASTS = frozenset({API_KEY_REVOKED, SIGNING_KEYS_CHANGED, JOB_CANCEL, METADATA_WATCH})


def is_broadcast(routing_key: str) -> bool:
    return routing_key in BROADCASTS


def job_event_key(kind: str) -> str:
    """Routing key of a JobEvent of this kind (started, progress, completed, failed...)."""
    return f"job.event.{kind}"


@dataclass(frozen=True)
class QueueSpec:
    """A competing-consumer queue: every consumer of it shares its messages."""

    name: str
    binding_keys: tuple[str, ...]

    @property
    def dead_letter_name(self) -> str:
        return f"{self.name}.dead-letter"


PROCESS_JOBS = QueueSpec("process.jobs", (JOB_REQUESTED,))
METADATA_JOB_EVENTS = QueueSpec("metadata.job-events", (JOB_EVENTS,))


@dataclass(frozen=True)
class Namespace:
    """How the logical names above are spelled on one broker."""

    name: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        if not _NAMESPACE.fullmatch(self.name):
            raise ValueError(f"bus namespace {self.name!r}: use lower-case letters, digits, '-', '_' and dots")

    @property
    def exchange(self) -> str:
        return f"{self.name}.events"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.name}.events.dead-letter"

    def queue(self, queue: QueueSpec) -> str:
        return f"{self.name}.{queue.name}"

    def dead_letter_queue(self, queue: QueueSpec) -> str:
        return f"{self.name}.{queue.dead_letter_name}"
