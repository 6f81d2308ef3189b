"""auth_svc: tenants, API keys, access tokens (EdDSA JWTs) and the JWKS every
service checks them against.

Entry points:
    python -m services.auth_svc              run it alone (__main__.py)
    python -m services.auth_svc.rotate       add a signing key (key rotation)
    server.create_server(settings)           build and start its gRPC server
    server.AuthComponent(settings)           its part of a server (the all-in-one uses this);
                                             .local_jwks() feeds a TokenVerifier in-process

Inside: api_keys.py (key text, hashing, ApiKey), tenants.py, timestamps.py, access.py (who may
manage which keys and grant which scopes), directory.py (tenants and keys in
SQL), signing_keys.py (Ed25519 keys on disk, JWKS, rotation), key_set.py (what GetJwks
publishes: keys, recent revocations, the longest token lifetime), signing_key_watch.py
(announces key changes on the bus), rate_limits.py (IssueToken's limits), token_issuer.py
(JWTs), bootstrap.py (first-start admin and service keys), servicer.py (the thin
gRPC layer), migrations/ (Alembic). Key files are written with
services/shared/private_files.py (0600).
"""
