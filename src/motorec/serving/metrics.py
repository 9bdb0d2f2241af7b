"""Request metrics in the Prometheus text format, collected by a pure ASGI middleware.

Pure ASGI (not Starlette's BaseHTTPMiddleware) because the latter adds about a millisecond per
request, which is the budget of a whole recommendation. The same middleware caps request bodies.
"""
from __future__ import annotations

import bisect
import json
import time
from collections import defaultdict
from typing import Any, Callable

BUCKETS_MS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 200, 500, 1000, 5000)


class Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS_MS) + 1)
        self.total = 0
        self.sum_ms = 0.0

    def observe(self, ms: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS_MS, ms)] += 1
        self.total += 1
        self.sum_ms += ms


class Metrics:
    def __init__(self) -> None:
        self.latency: dict[tuple[str, str], Histogram] = defaultdict(Histogram)
        self.status: dict[tuple[str, str, int], int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, ms: float) -> None:
        self.latency[(method, route)].observe(ms)
        self.status[(method, route, status)] += 1

    def render(self, gauges: dict[str, float]) -> str:
        lines = ["# TYPE motorec_requests_total counter"]
        for (method, route, status), n in sorted(self.status.items()):
            lines.append(f'motorec_requests_total{{method="{method}",route="{route}",status="{status}"}} {n}')
        lines.append("# TYPE motorec_request_latency_ms histogram")
        for (method, route), h in sorted(self.latency.items()):
            labels = f'method="{method}",route="{route}"'
            cumulative = 0
            for bound, count in zip([*map(str, BUCKETS_MS), "+Inf"], h.counts):
                cumulative += count
                lines.append(f'motorec_request_latency_ms_bucket{{{labels},le="{bound}"}} {cumulative}')
            lines.append(f"motorec_request_latency_ms_sum{{{labels}}} {h.sum_ms:.3f}")
            lines.append(f"motorec_request_latency_ms_count{{{labels}}} {h.total}")
        for name, value in gauges.items():
            lines.append(f"# TYPE motorec_{name} gauge")
            lines.append(f"motorec_{name} {value}")
        return "\n".join(lines) + "\n"


class TooLarge(Exception):
    pass


class MetricsMiddleware:
    """Times every HTTP request by route template and refuses bodies over `max_body` bytes (413)."""

    def __init__(self, app: Callable, metrics: Metrics, max_body: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500, "started": False}
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await self._reject(send, status)
            self._record(scope, status["code"], t0)
            return
        received = 0

        async def counting_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise TooLarge
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except TooLarge:
            if not status["started"]:
                await self._reject(send, status)
        finally:
            self._record(scope, status["code"], t0)

    async def _reject(self, send: Callable, status: dict[str, Any]) -> None:
        body = json.dumps({"detail": f"request body larger than {self.max_body} bytes"}).encode()
        status["code"] = 413
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: dict[str, Any], code: int, t0: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        self.metrics.observe(scope["method"], route, code, (time.perf_counter() - t0) * 1000)
