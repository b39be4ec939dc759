"""Ray Data path vs the CLI's folder mode, on the same cores (``docs/scale.md`` quotes the output).

    python benchmarks/ray.py [--count-1mp 16] [--count-12mp 6] [--rounds 2]

Measured, on the stand-in checkpoint (``RMBG_TEST_CHECKPOINT`` or ``~/.cache/rmbg-ci/standin``),
OpenVINO at its default precision, PNG cutouts:

1. images/s of ``rmbg cutout DIR --out-dir OUT`` (a new process: start-up and model load
   included) against :func:`rmbg.ray.remove_backgrounds` on a local Ray of all the machine's
   CPUs (Ray already running, as on a cluster; actor start-up and model load included), for
   1 MP and 12 MP photos, interleaved round by round, best round kept; target ratio >= 0.8;
2. sizing on this machine: the default (one actor, the THROUGHPUT hint over all cores) against
   one actor per core (one OpenVINO thread each);
3. scaling from one to two simulated nodes (``ray.cluster_utils.Cluster``, one CPU and one
   OpenVINO thread per node). Caveat: the simulated nodes share this machine's cores, memory
   and disk, so this shows that work spreads over nodes, not what real machines would add.

Writes ``benchmarks/results/ray-<host>-<time>.json``. Read the ratios: the machine is shared.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# this file is named ray.py: keep its folder off the path, so that `import ray` is Ray
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


@functools.cache
def _bench() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("rmbg_bench", HERE / "bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SIZES = {"1MP": (1224, 816), "12MP": (4000, 3000)}
SOURCES = ["astronaut", "chelsea", "coffee", "rocket"]


def checkpoint() -> str:
    env = os.environ.get("RMBG_TEST_CHECKPOINT")
    path = Path(env) if env else Path.home() / ".cache" / "rmbg-ci" / "standin"
    if not (path / "model.safetensors").is_file():
        sys.exit(f"no checkpoint at {path}: build it with ../shared/tools/standin-checkpoint")
    return str(path)


def make_folder(work: Path, label: str, count: int) -> Path:
    folder = work / f"in-{label}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        _bench().make_photo(folder / f"{label}-{i}.jpg", SIZES[label], i, SOURCES[i % len(SOURCES)])
    return folder


def run_cli(src: Path, out: Path, model: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rmbg",
            "cutout",
            str(src),
            "--out-dir",
            str(out),
            "--model",
            model,
            "-q",
            "--no-progress",
        ],
        check=True,
    )
    return time.perf_counter() - started


def run_ray(src: Path, out: Path, model: str, **kwargs: Any) -> float:
    from rmbg.ray import remove_backgrounds

    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = remove_backgrounds(src, out, model=model, progress=False, **kwargs)
    seconds = time.perf_counter() - started
    if result.failed or not result.processed:
        raise SystemExit(f"the Ray job failed: {result}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count-1mp", type=int, default=16)
    parser.add_argument("--count-12mp", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()

    import ray

    model = checkpoint()
    work = Path(tempfile.mkdtemp(prefix="rmbg-ray-bench-"))
    counts = {"1MP": args.count_1mp, "12MP": args.count_12mp}
    folders = {label: make_folder(work, label, n) for label, n in counts.items()}
    cpus = os.cpu_count() or 1
    res: dict[str, Any] = {
        "machine": {
            "cpus": cpus,
            "platform": platform.platform(),
            "ray": ray.__version__,
            "load_before": os.getloadavg(),
        },
        "counts": counts,
    }

    # warm the converted-model cache once, so that no timed run converts
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rmbg",
            "cutout",
            str(folders["1MP"] / "1MP-0.jpg"),
            "-o",
            str(work / "warm.png"),
            "--model",
            model,
            "-q",
        ],
        check=True,
    )

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        times: dict[str, dict[str, list[float]]] = {}
        one_per_core = {
            "actors": cpus,
            "cpus_per_actor": (cpus - 0.5) / cpus,
            "backend_options": {
                "performance_hint": "LATENCY",
                "config": {"INFERENCE_NUM_THREADS": 1},
            },
        }
        for r in range(args.rounds):
            for label, src in folders.items():
                t = times.setdefault(label, {})
                t.setdefault("cli", []).append(run_cli(src, work / "out-cli", model))
                t.setdefault("ray", []).append(run_ray(src, work / "out-ray", model))
                if label == "1MP":
                    t.setdefault("ray-actor-per-core", []).append(
                        run_ray(src, work / "out-ray2", model, **one_per_core)
                    )
                print(
                    f"round {r}: {label} " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in t.items()),
                    flush=True,
                )
        res["folder"] = {
            label: {
                name: {"best_s": min(v), "images_per_s": counts[label] / min(v), "all_s": v}
                for name, v in t.items()
            }
            for label, t in times.items()
        }
    finally:
        ray.shutdown()

    if not args.skip_scaling:
        res["scaling"] = scaling(folders["1MP"], work, model, counts["1MP"])
    res["machine"]["load_after"] = os.getloadavg()

    print("\nimages/s (best round)            CLI folder   Ray     Ray/CLI")
    for label, t in res["folder"].items():
        cli, ray_ = t["cli"]["images_per_s"], t["ray"]["images_per_s"]
        print(
            f"  {label:>5} ({counts[label]} photos)             {cli:6.2f}   {ray_:6.2f}   {ray_ / cli:.2f}x"
        )
    alt = res["folder"]["1MP"]["ray-actor-per-core"]["images_per_s"]
    print(f"  1MP, one 1-thread actor per core: {alt:.2f} images/s")
    if "scaling" in res:
        s = res["scaling"]
        print(
            f"scaling, 1 -> 2 simulated nodes (1 CPU each): {s['1']:.2f} -> {s['2']:.2f} images/s "
            f"({s['2'] / s['1']:.2f}x; the nodes share this machine's {cpus} cores)"
        )
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    name = f"ray-{platform.node()}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    (results / name).write_text(json.dumps(res, indent=2))
    print(f"wrote benchmarks/results/{name}")
    shutil.rmtree(work, ignore_errors=True)


def scaling(src: Path, work: Path, model: str, count: int) -> dict[str, float]:
    """images/s on 1 and 2 simulated nodes of 1 CPU (one actor, one OpenVINO thread each)."""
    import ray
    from ray.cluster_utils import Cluster

    out: dict[str, float] = {}
    for nodes in (1, 2):
        cluster = Cluster(
            initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
        )
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=1)
        try:
            ray.init(address=cluster.address, log_to_driver=False)
            cluster.wait_for_nodes()
            best = min(
                run_ray(
                    src,
                    work / "out-scale",
                    model,
                    backend_options={
                        "performance_hint": "LATENCY",
                        "config": {"INFERENCE_NUM_THREADS": 1},
                    },
                )
                for _ in range(2)
            )
            out[str(nodes)] = count / best
            print(f"scaling: {nodes} node(s): {count / best:.2f} images/s", flush=True)
        finally:
            ray.shutdown()
            cluster.shutdown()
    return out


if __name__ == "__main__":
    main()
