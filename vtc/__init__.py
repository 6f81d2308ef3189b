"""vtc client side: the `vtc` command line (vtc.cli) and the generated contracts (vtc.v1, built by `make proto`)."""
