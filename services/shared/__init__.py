"""Plumbing more than one service needs: settings, gRPC server bootstrap and
interceptors, token checks, the event bus, object storage, database, logs."""
