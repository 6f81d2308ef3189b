"""metadata_svc: the SQL source of truth for videos, jobs and renditions.

Entry points:
    python -m services.metadata_svc          run it alone (__main__.py)
    server.create_server(settings)           build and start its gRPC server
    server.MetadataComponent(settings, bus, store)
                                             its part of a server (the all-in-one uses this)

Inside:
    job.py          the Job domain object: status enum, idempotent event application
    video.py        Video and NewVideo (a registration)
    catalog.py      every SQL read and write, scoped to a tenant (models.py: tables;
                    migrations/: the Alembic scripts that build them)
    paging.py       ListVideos page sizes and opaque page tokens
    job_events.py   applies JobEvents from the bus, then fans them out (watch.py)
    dispatch.py     the JobRequested builder, and which job goes out next (fair across tenants)
    relay.py        the outbox relay: publishes committed messages with confirms, then deletes them
    quotas.py       per-tenant quotas checked when an upload registers
    removal.py      deleting a video with its stored objects
    cancel.py       CancelJob: the job ends CANCELLED, every worker is told (job.cancel)
    orphan_sources.py  removes stored sources no video row points to, after a grace period
    dead_letters.py consumes process.jobs' dead letters: a job that crashed every worker ends FAILED
    silent_jobs.py  a RUNNING job without events is handed on, then FAILED
    servicer.py     the thin gRPC layer
"""
