"""The four vtc services (auth_svc, upload_svc, process_svc, metadata_svc), the
plumbing they share (shared) and the all-in-one process (`python -m services`)."""
