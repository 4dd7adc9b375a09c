"""A load balancer with no affinity, for the official client: each HTTP request goes to the next replica.

Like a real balancer with passive health checks, a replica that refuses the connection is skipped (the
request never reached it, so trying the next one is safe).
"""

from __future__ import annotations

import itertools
from collections import Counter

import httpx2


class RoundRobin(httpx2.AsyncBaseTransport):
    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self._next = itertools.cycle(range(len(ports)))
        self._inner = httpx2.AsyncHTTPTransport()
        self.statuses: Counter[int] = Counter()
        self.by_port: Counter[int] = Counter()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        last_error: Exception | None = None
        for _ in range(len(self.ports)):
            port = self.ports[next(self._next)]
            request.url = request.url.copy_with(port=port)
            try:
                response = await self._inner.handle_async_request(request)
            except httpx2.ConnectError as error:
                last_error = error
                continue
            self.statuses[response.status_code] += 1
            self.by_port[port] += 1
            return response
        assert last_error is not None
        raise last_error

    async def aclose(self) -> None:
        await self._inner.aclose()
