"""The runtime's tests: in-process unit tests of its parts, then integration tests on real `mcp-runtime`
processes and a real Redis."""
