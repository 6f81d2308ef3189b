"""The upload service: chunked client-streaming Upload, checked (size, sha256,
profile) and probed with PyAV before the source is stored, recorded on
metadata_svc and its transcode requested on the bus.

Entry points: `python -m services.upload_svc` (__main__.py),
server.create_server(settings) and server.UploadComponent for the all-in-one process.
"""
