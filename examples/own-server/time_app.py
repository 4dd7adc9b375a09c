"""mcp-server-time's server, named for mcp-runtime (`--app time_app:app`).

mcp-server-time builds its MCPServer in `create_server(local_tz)`; the runtime needs the object itself (or a
zero-argument factory), so this module makes it with the time zone from $LOCAL_TIMEZONE (UTC by default).
"""

import os

from mcp_server_time.server import create_server

app = create_server(os.environ.get("LOCAL_TIMEZONE", "UTC"))
