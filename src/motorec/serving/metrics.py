"""Request metrics in the Prometheus text format, collected by a pure ASGI middleware.

Pure ASGI (not Starlette's BaseHTTPMiddleware) because the latter adds about a millisecond per
request, which is the budget of a whole recommendation.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

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


class MetricsMiddleware:
    """Times every HTTP request by route template."""

    def __init__(self, app: Callable, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def tracking_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(scope["method"], route, status["code"], (time.perf_counter() - t0) * 1000)
