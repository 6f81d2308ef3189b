"""Backblaze B2 for tests: b2sdk's own in-process simulator (RawSimulator) behind
a real B2Store. A fake only because the real service cannot be reached here;
everything above b2sdk's raw API (sessions, upload manager, downloaders) is
b2sdk's real code. State lives in this process; downloads sleep up to 10 ms per
chunk, so tests keep their files small."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from b2sdk.v2 import B2Api, B2HttpApiConfig, InMemoryAccountInfo, RawSimulator
from b2sdk.v2.raw_simulator import BucketSimulator

from services.shared.storage.b2 import B2Store


@dataclass
class SimulatedB2:
    store: B2Store
    api: B2Api
    raw: RawSimulator
    bucket_name: str
    key_id: str
    application_key: str

    @property
    def bucket(self) -> BucketSimulator:
        return self.raw.bucket_name_to_bucket[self.bucket_name]

    def versions(self, prefix: str = "") -> list[tuple[str, str]]:
        """(name, action) of every stored file version, hide markers included."""
        return sorted((name, f.action) for (name, _id), f in self.bucket.file_name_and_id_to_file.items()
                      if name.startswith(prefix))

    def expire_token(self) -> None:
        self.raw.expire_auth_token(self.api.account_info.get_account_auth_token())


def simulated_b2(*, large_file_threshold_bytes: int = 200 * 1024 * 1024) -> SimulatedB2:
    api = B2Api(InMemoryAccountInfo(), api_config=B2HttpApiConfig(_raw_api_class=RawSimulator))
    raw = api.session.raw_api
    assert isinstance(raw, RawSimulator)
    key_id, application_key = raw.create_account()
    api.authorize_account("production", key_id, application_key)
    bucket_name = f"vtc-test-{uuid.uuid4().hex[:12]}"
    api.create_bucket(bucket_name, "allPrivate")
    # The store authorizes on its own, as it does against the real service.
    store = B2Store(bucket_name, key_id, application_key, api=api,
                    large_file_threshold_bytes=large_file_threshold_bytes)
    return SimulatedB2(store, api, raw, bucket_name, key_id, application_key)
