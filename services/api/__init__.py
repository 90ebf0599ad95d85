"""The HTTP API: reads shared memory only; commands go to the services' control sockets (docs/OBSERVABILITY.md)."""
