"""The process service: transcode workers fed by the bus, and the profile catalogue.

Entry points:
    python -m services.process_svc          run it alone (__main__.py)
    server.create_server(settings)          its gRPC server, bound (port 0 in tests)
    server.ProcessComponent(settings, bus, store)   for the all-in-one process

Inside: profiles/ (YAML catalogue) -> plan/ (pure: profile + source -> EncodePlan)
-> execute/ (PyAV: one decode, split+scale graph, one encoder per rung)
-> worker.py (bus job -> events, storage).
"""
