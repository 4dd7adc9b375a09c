"""The baseline: the same demo app served the stock way, `MCPServer.streamable_http_app()` under uvicorn.

    python -m bench.plain_server --port 8001 [--json-response] [--access-log] [--loop asyncio] [--http h11]

With no flags this is what `app.run("streamable-http")` runs on a stock `pip install mcp` (uvicorn without
uvloop or httptools, the access log on, INFO logs).
"""

from __future__ import annotations

import argparse

import uvicorn

from mcp_runtime.examples.demo import app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--json-response", action="store_true")
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("--loop", default="asyncio")
    parser.add_argument("--http", default="h11")
    args = parser.parse_args()
    starlette_app = app.streamable_http_app(json_response=args.json_response, host="127.0.0.1")
    config = uvicorn.Config(
        starlette_app,
        host="127.0.0.1",
        port=args.port,
        log_level="info",
        access_log=args.access_log,
        loop=args.loop,
        http=args.http,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
