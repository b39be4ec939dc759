"""Prometheus metrics in the text exposition format (0.0.4), written by hand: no dependency.

Exposed at ``GET /metrics``:

- ``rmbg_requests_total{route, status}`` (counter): responses by route and status.
- ``rmbg_request_duration_seconds{route}`` (histogram): from the first byte in to the last out.
- ``rmbg_queue_wait_seconds`` (histogram): time an admitted request waited for a worker.
- ``rmbg_images_in_flight`` (gauge): worker threads busy with an image.
- ``rmbg_queue_depth`` (gauge): admitted requests waiting for a worker.
- ``rmbg_admitted`` (gauge): requests in the service (reading, waiting or computing).
- ``rmbg_capacity`` (gauge): ``workers + max_queue``, the most admitted at once.
- ``rmbg_rejected_total{reason}`` (counter): turned away with 503 (``busy``, ``not_ready``).
- ``rmbg_model_ready`` (gauge): 1 once the model is loaded and compiled.

Routes are the service's own paths; anything else counts as ``other``, so that a scan of random
URLs cannot grow the label set.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["BUCKETS", "Histogram", "Metrics", "MetricsMiddleware"]

#: Histogram bucket bounds, in seconds: from a fast mask to a slow 12 MP cutout under load.
BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class Histogram:
    """Cumulative buckets, a sum and a count (Prometheus histogram semantics)."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.bounds = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> Iterable[str]:
        sep = "," if labels else ""
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            yield f'{name}_bucket{{{labels}{sep}le="{le}"}} {running}'
        suffix = f"{{{labels}}}" if labels else ""
        yield f"{name}_sum{suffix} {self.sum!r}"
        yield f"{name}_count{suffix} {self.count}"


class Metrics:
    """The service's counters and histograms; gauges are read from ``gauges()`` when scraped."""

    def __init__(self, routes: Iterable[str]) -> None:
        self.routes = frozenset(routes)
        self._lock = threading.Lock()
        self.requests: defaultdict[tuple[str, int], int] = defaultdict(int)
        self.durations: defaultdict[str, Histogram] = defaultdict(Histogram)
        self.queue_wait = Histogram()
        self.rejected: defaultdict[str, int] = defaultdict(int)
        self.gauges: Callable[[], dict[str, float]] = dict

    def route(self, path: str) -> str:
        return path if path in self.routes else "other"

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        route = self.route(path)
        with self._lock:
            self.requests[(route, status)] += 1
            self.durations[route].observe(seconds)

    def observe_queue_wait(self, seconds: float) -> None:
        with self._lock:
            self.queue_wait.observe(seconds)

    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1

    def render(self) -> str:
        """The exposition text."""
        out: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")

        with self._lock:
            head("rmbg_requests_total", "counter", "Responses by route and status.")
            for (route, status), n in sorted(self.requests.items()):
                out.append(f'rmbg_requests_total{{route="{route}",status="{status}"}} {n}')
            head("rmbg_request_duration_seconds", "histogram", "Request duration by route.")
            for route, hist in sorted(self.durations.items()):
                out.extend(hist.lines("rmbg_request_duration_seconds", f'route="{route}"'))
            head("rmbg_queue_wait_seconds", "histogram", "Time waited for a worker slot.")
            out.extend(self.queue_wait.lines("rmbg_queue_wait_seconds"))
            head("rmbg_rejected_total", "counter", "Requests turned away with 503, by reason.")
            for reason in ("busy", "not_ready"):
                out.append(f'rmbg_rejected_total{{reason="{reason}"}} {self.rejected[reason]}')
        gauges = {
            "rmbg_images_in_flight": "Worker threads busy with an image.",
            "rmbg_queue_depth": "Admitted requests waiting for a worker.",
            "rmbg_admitted": "Requests in the service (reading, waiting or computing).",
            "rmbg_capacity": "Most requests admitted at once (workers + max_queue).",
            "rmbg_model_ready": "1 once the model is loaded and compiled.",
        }
        values = self.gauges()
        for name, text in gauges.items():
            head(name, "gauge", text)
            out.append(f"{name} {values.get(name, 0)!r}")
        return "\n".join(out) + "\n"


class MetricsMiddleware:
    """ASGI middleware timing every HTTP request and counting it by route and status."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watch(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.metrics.observe_request(scope["path"], status, time.perf_counter() - started)
