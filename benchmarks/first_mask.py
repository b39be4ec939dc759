"""First mask without PyTorch: the torch-free IR against the torch-converted one, side by side.

Run it with::

    python benchmarks/first_mask.py [--checkpoint DIR] [--rounds 3] [--skip-int8]

Two measurements on the stand-in checkpoint (``RMBG_TEST_CHECKPOINT`` or
``~/.cache/rmbg-ci/standin``), each interleaved round by round so that a busy machine slows both
sides alike (each figure is the best of the rounds; the medians are in the JSON):

1. **first mask, new process**: ``BackgroundRemover(checkpoint).mask(photo)`` from the process's
   start (imports included), with an empty cache (the IR is built) and with a warm one (the IR is
   read). *now* is this tree's ``src``; *before* is the tree before the torch-free builder
   (``--before``, default: the parent of the commit that added ``rmbg/backends/ov_graph.py``),
   extracted with ``git archive``: the checkpoint was loaded into the torch module and traced
   with ``ov.convert_model``. An empty cache also empties the digest sidecar (the 176 MB
   checkpoint is hashed again), as on a new machine.
2. **network time per precision**, one process: the IR built by ``ov_graph`` (a checkpoint
   source) against the IR ``ov.convert_model`` traces from the torch module (a module source,
   exactly what checkpoints went through before), each compiled on the CPU at ``f32``,
   ``auto`` (bf16 on CPUs with it), ``f16`` (where the CPU has it) and ``int8`` (NNCF, once per
   IR; minutes).

Prints a table and writes ``<out>/first-mask-<host>-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

PHOTO = ROOT / "src" / "rmbg" / "data" / "photos" / "astronaut.jpg"

_CHILD = """
import sys, time, json
sys.path.insert(0, {src!r})
from rmbg import BackgroundRemover
r = BackgroundRemover({ckpt!r}, cache_dir={cache!r}, device="CPU")
m = r.mask({photo!r})
import rmbg
print(json.dumps({{"t_first": time.time(), "torch_imported": "torch" in sys.modules,
                  "precision": r.info.inference_precision, "rmbg": rmbg.__file__}}))
"""


def _before_tree(rev: str | None, work: Path) -> tuple[str, Path]:
    """``src`` of the tree before the torch-free builder, extracted with ``git archive``."""
    if rev is None:
        added = subprocess.run(
            ["git", "log", "--diff-filter=A", "--format=%H", "--", "src/rmbg/backends/ov_graph.py"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        if not added:
            sys.exit("cannot find the commit that added ov_graph.py; pass --before REV")
        rev = added[-1] + "^"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = work / f"before-{commit}"
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", commit, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return commit, dest / "src"


def _child(src: Path, ckpt: Path, cache: Path) -> dict[str, Any]:
    code = _CHILD.format(src=str(src), ckpt=str(ckpt), cache=str(cache), photo=str(PHOTO))
    env = dict(os.environ, RMBG_CACHE_DIR=str(cache))  # the digest sidecar lives there
    env.pop("PYTHONPATH", None)
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if proc.returncode:
        sys.exit(f"child failed:\n{proc.stderr}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data["seconds"] = data.pop("t_first") - t0
    if not data.pop("rmbg").startswith(str(src)):
        sys.exit(f"the child imported another rmbg than {src}")
    return data


def first_mask(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    commit, before_src = _before_tree(args.before, work)
    trees = {"now": ROOT / "src", f"before ({commit})": before_src}
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        for name, src in trees.items():
            cache = work / f"cache-{r}-{name.split()[0]}"
            shutil.rmtree(cache, ignore_errors=True)
            for state in ("empty cache", "warm cache"):
                data = _child(src, args.checkpoint, cache)
                runs.setdefault(f"{name}, {state}", []).append(data)
                print(
                    f"  round {r + 1} {name:<18} {state:<11} {data['seconds']:6.2f} s", flush=True
                )
            shutil.rmtree(cache, ignore_errors=True)
    out: dict[str, Any] = {}
    for key, rs in runs.items():
        secs = [d["seconds"] for d in rs]
        out[key] = {
            "best_s": min(secs),
            "median_s": statistics.median(secs),
            "runs_s": secs,
            "torch_imported": any(d["torch_imported"] for d in rs),
            "precision": rs[0]["precision"],
        }
    return out


def network(args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    import openvino as ov

    from rmbg import BackgroundRemover
    from rmbg.model import build_model
    from rmbg.preprocess import preprocess
    from rmbg.weights import read_state_dict, resolve_model

    ckpt = resolve_model(args.checkpoint)
    module = resolve_model(build_model(read_state_dict(ckpt.weights_path)))
    sources = {"graph (ov_graph)": ckpt, "traced (convert_model)": module}
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    precisions = ["f32", "auto"] + (["f16"] if "FP16" in caps else [])
    precisions += [] if args.skip_int8 else ["int8"]
    from PIL import Image

    with Image.open(PHOTO) as im:
        x = preprocess(np.asarray(im.convert("RGB")))
    engines: dict[tuple[str, str], Any] = {}
    prepare: dict[str, float] = {}
    for precision in precisions:
        for name, source in sources.items():
            t = time.perf_counter()  # build/convert (and quantize) into the cache, or read it
            remover = BackgroundRemover(source, precision=precision, cache_dir=cache, device="CPU")
            engine = remover.engine()
            t_ir = time.perf_counter() - t
            engine(x)
            engines[(precision, name)] = engine
            prepare[f"{precision} {name}"] = round(t_ir, 2)
            print(
                f"  {precision:<5} {name:<22} engine ready in {t_ir:6.1f} s "
                f"({engine.info.inference_precision})",
                flush=True,
            )
    times: dict[tuple[str, str], list[float]] = {key: [] for key in engines}
    for _ in range(args.rounds):
        for key, engine in engines.items():
            for _ in range(args.repeats):
                t = time.perf_counter()
                engine(x)
                times[key].append(time.perf_counter() - t)
    out: dict[str, Any] = {"engine_seconds": prepare, "precisions": {}}
    graph, traced = sources
    for precision in precisions:
        row = {
            name: {
                "best_s": min(times[(precision, name)]),
                "median_s": statistics.median(times[(precision, name)]),
                "inference_precision": engines[(precision, name)].info.inference_precision,
            }
            for name in sources
        }
        row["graph_vs_traced"] = row[graph]["best_s"] / row[traced]["best_s"]
        row["graph_vs_traced_median"] = row[graph]["median_s"] / row[traced]["median_s"]
        out["precisions"][precision] = row
    if "FP16" not in caps:
        out["f16"] = f"not measured: the CPU has no FP16 ({', '.join(caps)})"
    return out


def main(argv: list[str] | None = None) -> int:
    import bench

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench.common_arguments(parser)
    parser.add_argument("--before", default=None, help="git revision of the 'before' tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="inferences per engine per round")
    parser.add_argument("--skip-int8", action="store_true")
    parser.add_argument("--skip", default="", help="comma list: first,network")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    if not (args.checkpoint / "model.safetensors").is_file():
        parser.error(f"no checkpoint at {args.checkpoint} (set RMBG_TEST_CHECKPOINT)")
    res: dict[str, Any] = {"machine": bench.machine(), "started": time.strftime("%F %T")}
    res["settings"] = {k: str(v) for k, v in vars(args).items()}
    work = Path(tempfile.mkdtemp(prefix="rmbg-first-mask-"))
    try:
        if "first" not in skip:
            print("first mask in a new process (empty cache, then warm)...", flush=True)
            res["first_mask"] = first_mask(args, work)
        if "network" not in skip:
            print("network time per precision (first run: IR builds and INT8)...", flush=True)
            args.cache.mkdir(parents=True, exist_ok=True)
            res["network"] = network(args, args.cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["machine"]["load_average_end"] = os.getloadavg()

    print()
    for key, r in res.get("first_mask", {}).items():
        print(
            f"first mask, {key:<32} best {r['best_s']:6.2f} s  median {r['median_s']:6.2f} s  "
            f"torch imported: {r['torch_imported']}"
        )
    for precision, row in res.get("network", {}).get("precisions", {}).items():
        parts = [f"{name} {v['best_s']:.3f} s" for name, v in row.items() if isinstance(v, dict)]
        print(
            f"network {precision:<5} " + ", ".join(parts)
            + f"  graph/traced {row['graph_vs_traced']:.3f} (median {row['graph_vs_traced_median']:.3f})"
        )  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"first-mask-{platform.node()}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(res, indent=1, default=str))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
