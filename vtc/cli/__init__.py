"""The `vtc` command line: log in with an API key, upload and watch videos,
list, inspect, download and delete them, over gRPC.

Entry point: `vtc.cli.main:main` (the `vtc` console script). Modules:
  main         argument parsing and dispatch; turns every failure into one line
  credentials  the credentials file (API key, token, expiry, server address)
  client       the channel to the server and the auth metadata, renewing tokens
  errors       CliError and the one-line rendering of any failure
  output       JSON and human output (tables, summaries)
  progress     progress bars for bytes moved and for transcoding
  commands/    one module per command group
"""
