"""The network control API: OpenSIPS-compatible MI (JSON-RPC over HTTP) and event subscribers."""
