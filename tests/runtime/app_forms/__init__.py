"""MCP apps in every form `mcp-runtime serve --app` accepts, for the tests of app loading."""
