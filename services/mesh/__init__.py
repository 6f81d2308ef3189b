"""The scale-out mesh on one machine without Docker (`make run-mesh`,
`python -m services.mesh`): the four services as separate processes (auth,
two metadata replicas, two process workers, upload), Envoy's REST gateway and
Traefik at the edge, on RabbitMQ and PostgreSQL.

    settings.py  MeshSettings: edge ports, replica counts, database
    plan.py      what to run: each process's command and environment (pure)
    database.py  creates the PostgreSQL database if it is missing
    launcher.py  starts the plan in order, waits for readiness, restarts a
                 process that dies, stops everything on the way out
"""
