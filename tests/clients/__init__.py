"""Clients nobody on the project wrote: the official MCP conformance suite, the TypeScript and Go SDKs.

`install.sh` here puts them into the cache (`tests.support.foreign_tools` finds them there); the conformance
suite's server app is `conformance_app`, and the client programs are `ts/` and `go/`.
"""
