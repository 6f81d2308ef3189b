"""One module per command group. Each command is `run_<name>(args, out) -> exit code`."""
