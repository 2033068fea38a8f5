"""The embedded runtime: executes clinops resources on this machine, without a cluster."""
