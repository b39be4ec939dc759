"""``rmbg serve`` against the library called directly, side by side in one run, on 127.0.0.1.

    python benchmarks/serve.py [--checkpoint DIR] [--quick] [--soak 1000] [--out FILE]

On the stand-in checkpoint (``RMBG_TEST_CHECKPOINT`` or ``~/.cache/rmbg-ci/standin``), OpenVINO,
the service's default settings (the backend's THROUGHPUT hint, workers = infer requests + 2):

1. latency (p50/p95/p99) and images/s at 1, 2, 4 and 16 concurrent clients, for a 1 MP and a
   12 MP JPEG (the bundled astronaut upscaled) -> RGBA PNG: the service (``POST /v1/cutout``,
   raw body, one httpx client per thread) against ``remover.cutout(bytes, output="png")`` called
   from as many threads in this process, with the same settings; each pair run back to back;
2. the library's pipelined batch (``remover.cutouts``, what ``rmbg cutout folder/`` runs) on the
   same photos: the throughput the service should come close to at 4 clients;
3. a burst of ``capacity + 8`` simultaneous requests: 0 errors up to the queue bound, only 503s
   beyond it;
4. a memory soak: the service's resident memory after 100 and after ``--soak`` requests of the
   1 MP photo, on the fake backend (everything but the network: HTTP, decode, compositing,
   encoding), so that it runs in a minute; ``--soak-real`` runs it on the stand-in instead.

With few requests per cell, p99 is the slowest request. Prints a table; ``--out`` writes JSON.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

SIZES = {"1MP": (1224, 816), "12MP": (4000, 3000)}
CLIENTS = (1, 2, 4, 16)


def photo(size: tuple[int, int]) -> bytes:
    with Image.open(ROOT / "src" / "rmbg" / "data" / "photos" / "astronaut.jpg") as im:
        big = im.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def percentiles(latencies: list[float]) -> dict[str, float]:
    xs = sorted(latencies)

    def at(q: float) -> float:
        return xs[min(len(xs) - 1, max(0, round(q * len(xs) + 0.5) - 1))]

    return {"p50": statistics.median(xs), "p95": at(0.95), "p99": at(0.99)}


def concurrent_run(clients: int, total: int, call: Callable[[Any], Any], make: Any) -> dict:
    """``total`` calls from ``clients`` threads; latency of each, images/s over the wall time."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    todo = iter(range(total))

    def worker() -> None:
        ctx = make()
        with ctx as handle:
            while True:
                with lock:
                    if next(todo, None) is None:
                        return
                started = time.perf_counter()
                try:
                    call(handle)
                except Exception as exc:  # counted, reported
                    with lock:
                        errors.append(repr(exc))
                    continue
                with lock:
                    latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "wall": time.perf_counter() - started, "errors": errors}


def interleaved(clients: int, total: int, runs: dict[str, tuple[Any, Any]], rounds: int) -> dict:
    """Each of ``runs`` (name -> (call, make)) for ``total`` calls, in ``rounds`` alternating
    rounds (ABBA...), so that a machine getting busier or quieter weighs on all alike."""
    pooled: dict[str, dict[str, Any]] = {
        k: {"latencies": [], "wall": 0.0, "errors": []} for k in runs
    }
    per_round = max(clients, -(-total // rounds))
    for r in range(rounds):
        for name in list(runs) if r % 2 == 0 else list(reversed(runs)):
            call, make = runs[name]
            res = concurrent_run(clients, per_round, call, make)
            for key in ("latencies", "errors"):
                pooled[name][key] += res[key]
            pooled[name]["wall"] += res["wall"]
    return {
        name: {
            **percentiles(p["latencies"]),
            "images_per_s": len(p["latencies"]) / p["wall"],
            "requests": len(p["latencies"]) + len(p["errors"]),
            "errors": p["errors"],
        }
        for name, p in pooled.items()
    }


#: ``rmbg serve``, with the fake backend offered for the soak (the CLI hides it from users).
LAUNCH = (
    "import sys, rmbg.cli.flags as flags; flags.HIDDEN_BACKENDS = frozenset(); "
    "from rmbg.cli import main; sys.exit(main(['serve', *sys.argv[1:]]))"
)


class Service:
    """``rmbg serve`` on 127.0.0.1, a free port read back from its log."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        # uvicorn says where it listens at info level (the log is read and dropped)
        cmd = [sys.executable, "-c", LAUNCH, "--port", "0", *args]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        self.url = ""
        found = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                m = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
                if m:
                    self.url = m.group(1)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(600):
            self.stop()
            raise RuntimeError("the service did not start")
        while httpx.get(self.url + "/health/ready", timeout=30).status_code != 200:
            time.sleep(0.2)

    def rss_mb(self) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def service(args: list[str], env: dict[str, str]) -> Iterator[Service]:
    s = Service(args, env)
    try:
        yield s
    finally:
        s.stop()


def post(url: str, body: bytes) -> Callable[[httpx.Client], None]:
    def call(client: httpx.Client) -> None:
        r = client.post(url, content=body, headers={"content-type": "image/jpeg"})
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")

    return call


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("RMBG_TEST_CHECKPOINT") or str(Path.home() / ".cache/rmbg-ci/standin")
    p.add_argument("--checkpoint", default=default)
    p.add_argument("--quick", action="store_true", help="fewer requests per cell")
    p.add_argument("--soak", type=int, default=1000, help="requests in the memory soak")
    p.add_argument("--soak-real", action="store_true", help="soak on the stand-in, not fake")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES))
    p.add_argument("--no-soak", action="store_true")
    args = p.parse_args()

    from rmbg import BackgroundRemover

    cache = Path(os.environ.get("RMBG_CACHE_DIR") or tempfile.mkdtemp(prefix="rmbg-serve-"))
    env = {**os.environ, "RMBG_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT / "src")}
    env.pop("RMBG_TOKEN", None)
    remover = BackgroundRemover(
        args.checkpoint, backend_options={"performance_hint": "THROUGHPUT"}, cache_dir=cache
    )
    remover.warmup()
    n_requests = int(getattr(remover.engine(), "n_requests", 1))
    photos = {name: photo(SIZES[name]) for name in args.sizes}
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "infer_requests": n_requests,
        "cells": [],
    }
    print(f"# {os.cpu_count()} CPUs, {n_requests} infer requests; ratios service/direct")
    header = f"{'size':5} {'clients':>7} | {'p50 direct':>10} {'p50 http':>9} {'x':>5} | "
    header += f"{'p95 http':>8} {'p99 http':>8} | {'img/s direct':>12} {'img/s http':>10} {'x':>5}"
    print(header)
    # a deadline no cell reaches: the comparison is of throughput, not of 504s
    with service(["--model", args.checkpoint, "--timeout", "3600"], env) as s:
        info = httpx.get(s.url + "/v1/info").json()
        results["service"] = {
            "workers": info["workers"],
            "max_queue": info["max_queue"],
            "rss_mb_ready": round(s.rss_mb(), 1),
        }
        print(f"# service: {results['service']}")
        for name, body in photos.items():
            base = 2 if args.quick else (6 if name == "12MP" else 12)
            for clients in CLIENTS:
                total = max(base, clients if args.quick else 2 * clients)

                def direct(_: Any, body: bytes = body) -> None:
                    remover.cutout(body, output="png")

                both = interleaved(
                    clients, total, {
                        "direct": (direct, contextlib.nullcontext),
                        "http": (post(s.url + "/v1/cutout", body), lambda: httpx.Client(timeout=600)),
                    }, rounds=2,
                )  # fmt: skip
                d, h = both["direct"], both["http"]
                cell = {"size": name, "clients": clients, "requests": total, "direct": d, "http": h}
                results["cells"].append(cell)
                print(
                    f"{name:5} {clients:>7} | {d['p50']:>9.3f}s {h['p50']:>8.3f}s "
                    f"{h['p50'] / d['p50']:>5.2f} | {h['p95']:>7.3f}s {h['p99']:>7.3f}s | "
                    f"{d['images_per_s']:>12.2f} {h['images_per_s']:>10.2f} "
                    f"{h['images_per_s'] / d['images_per_s']:>5.2f}"
                    + (f"  errors: {len(d['errors'])}/{len(h['errors'])} {sorted(set(d['errors'] + h['errors']))[:2]}" if d["errors"] or h["errors"] else "")
                )  # fmt: skip
            n = max(4, 2 * base)
            started = time.perf_counter()
            for _ in remover.cutouts([body] * n, output="png"):
                pass
            batch = n / (time.perf_counter() - started)
            at4 = next(c for c in results["cells"] if c["size"] == name and c["clients"] == 4)
            results.setdefault("batch", {})[name] = batch
            print(
                f"{name:5}   batch | library cutouts() {batch:.2f} img/s; service at 4 clients "
                f"{at4['http']['images_per_s'] / batch:.2f}x of it"
            )
        capacity = info["workers"] + info["max_queue"]
        results["burst"] = burst(s.url, photos[args.sizes[0]], capacity + 8)
        print(f"burst of {capacity + 8} (capacity {capacity}): {results['burst']}")
        results["service"]["rss_mb_end"] = round(s.rss_mb(), 1)
    if not args.no_soak:
        soak_args = ["--model", args.checkpoint] if args.soak_real else fake_args(cache)
        results["soak"] = soak(soak_args, env, photo(SIZES["1MP"]), args.soak)
        print(f"soak ({'stand-in' if args.soak_real else 'fake backend'}): {results['soak']}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


def fake_args(cache: Path) -> list[str]:
    model = cache / "fake-model.onnx"
    model.write_bytes(b"")
    return ["--model", str(model), "--backend", "fake"]


def burst(url: str, body: bytes, n: int) -> dict[str, Any]:
    """``n`` requests at once: how many 200, 503, anything else."""
    barrier = threading.Barrier(n)

    def one(_: int) -> int:
        with httpx.Client(timeout=600) as c:
            barrier.wait()
            return c.post(
                url + "/v1/cutout", content=body, headers={"content-type": "image/jpeg"}
            ).status_code

    with cf.ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(one, range(n)))
    return {str(code): codes.count(code) for code in sorted(set(codes))}


def soak(server_args: list[str], env: dict[str, str], body: bytes, total: int) -> dict[str, Any]:
    """Resident memory of the service after 100 and after ``total`` requests (4 clients)."""
    out: dict[str, Any] = {"requests": total}
    with service(server_args, env) as s:
        out["rss_mb_ready"] = round(s.rss_mb(), 1)
        call = post(s.url + "/v1/cutout", body)
        done = 0
        for mark in (100, total):
            r = concurrent_run(4, mark - done, call, lambda: httpx.Client(timeout=600))
            done = mark
            out[f"rss_mb_after_{mark}"] = round(s.rss_mb(), 1)
            out[f"errors_to_{mark}"] = len(r["errors"])
        out["growth"] = round(out[f"rss_mb_after_{total}"] / out["rss_mb_after_100"] - 1, 3)
    return out


if __name__ == "__main__":
    sys.exit(main())
