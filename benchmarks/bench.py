"""rmbg's benchmark suite: the notebook's pipelines against rmbg's, side by side, in one run.

Run it with ``nox -s bench`` or::

    python benchmarks/bench.py [--checkpoint DIR] [--out benchmarks/results] [--quick]

What it measures, on the stand-in checkpoint (``RMBG_TEST_CHECKPOINT`` or
``~/.cache/rmbg-ci/standin``), every pipeline in the same process and interleaved round by round,
so that a busy or throttled machine slows them all alike and the *ratios* hold:

1. single image, model loaded, per stage (decode, pre, network, post, compose, encode), a 12 MP
   and a 1 MP JPEG -> RGBA PNG file: (a) the notebook's PyTorch pipeline, (b) the notebook's
   OpenVINO pipeline, (c) rmbg torch, (d) rmbg OpenVINO f32, default and int8; plus rmbg's
   default with Pillow's PNG encoder (what rmbg 0.1 shipped) and with its own encoder on zlib
   (an install without ``rmbg[fast]``'s ISA-L);
2. folder throughput (12 MP and 1 MP photos): rmbg's pipelined ``cutouts()`` against the network
   alone, and the notebook's loop;
3. cold start: a new process, warm cache -> first mask, against a warm call; is torch imported;
4. peak memory of a 50 MP photo against the loaded model's footprint;
5. explorations: input_size= (speed and mask quality), OpenVINO pre-processing in the graph,
   the notebook's un-pruned FP16 IR, stream/thread settings, a cheaper post-processing resize.

It prints a table of ratios, writes ``<out>/<host>-<date>.json`` and ``<out>/latest.json``, and
renders ``docs/performance.png`` (see ``benchmarks/plot.py``).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import gc
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

STAGES = ("decode", "pre", "network", "post", "compose", "encode")
SIZES = {"12MP": (4000, 3000), "1MP": (1224, 816)}
BUNDLED = ("coffee", "astronaut", "rocket", "chelsea")


# -- machine and inputs -----------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """What the numbers ran on."""
    info: dict[str, Any] = {
        "host": platform.node(),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_average_start": os.getloadavg(),
    }
    with contextlib.suppress(OSError):
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                info["isa"] = sorted(
                    f
                    for f in flags
                    if f
                    in {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8"}
                )
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 2**20, 1)
    versions = {}
    for name in ("numpy", "PIL", "openvino", "torch", "nncf", "rmbg", "isal"):
        with contextlib.suppress(Exception):
            mod = __import__(name)
            versions[name] = getattr(mod, "__version__", None) or mod.get_version()
    info["versions"] = versions
    return info


def make_photo(path: Path, size: tuple[int, int], seed: int, source: str) -> Path:
    """A deterministic camera-like JPEG: a bundled photo upscaled, with sensor-like noise."""
    if path.exists():
        return path
    src = ROOT / "src" / "rmbg" / "data" / "photos" / f"{source}.jpg"
    im = Image.open(src).convert("RGB").resize(size, Image.Resampling.LANCZOS)
    rng = np.random.default_rng(seed)
    out = np.asarray(im).astype(np.int16)
    for y in range(0, out.shape[0], 512):  # in bands: a 50 MP photo stays cheap to make
        band = out[y : y + 512]
        band += rng.normal(0, 3, band.shape).astype(np.int16)
    Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def photos(work: Path, folder_size: int) -> dict[str, list[Path]]:
    """``{"12MP": [paths...], "1MP": [...]}``: the first of each is the single-image photo."""
    out: dict[str, list[Path]] = {}
    for label, size in SIZES.items():
        out[label] = [
            make_photo(work / f"{label}-{i}.jpg", size, i, BUNDLED[i % len(BUNDLED)])
            for i in range(max(1, folder_size))
        ]
    return out


# -- timing helpers ---------------------------------------------------------------------------------
class Timer:
    """Accumulates named stage times."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t


def summarise(runs: list[dict[str, float]]) -> dict[str, float]:
    """Best-of-N per stage and for the total (the machine is shared: interference only ever adds
    time, so the minimum is the robust estimate of a cost), plus the median total."""
    keys = sorted({k for r in runs for k in r})
    out = {k: min(r.get(k, 0.0) for r in runs) for k in keys}
    totals = [sum(r.values()) for r in runs]
    out["total"] = min(totals)
    out["total_median"] = statistics.median(totals)
    return out


def settle() -> None:
    """Let the previous runtime's worker threads stop spinning before the next measurement."""
    gc.collect()
    time.sleep(0.2)


# -- the pipelines ----------------------------------------------------------------------------------
class RmbgPipeline:
    """rmbg, stage by stage, exactly the calls ``remover.cutout(jpeg_bytes)`` makes."""

    def __init__(self, remover: Any, encoder: str = "library") -> None:
        self.remover = remover
        self.engine = remover.engine()
        self.encoder = encoder

    def __call__(self, path: Path, out: Path) -> dict[str, float]:
        from rmbg import compose as _compose
        from rmbg import io as _io
        from rmbg.postprocess import postprocess
        from rmbg.preprocess import preprocess

        t = Timer()
        with t("decode"):
            loaded = _io.load_image(path.read_bytes())
        with t("pre"):
            x = preprocess(loaded.rgb, self.remover.spec)
        with t("network"):
            raw = self.engine(x)
        with t("post"):
            mask = postprocess(raw, (loaded.rgb.shape[0], loaded.rgb.shape[1]))
        with t("compose"):
            mask = _compose.shape_mask(mask, threshold=None, feather=0, grow=0, invert=False)
            rgba = _compose.compose(loaded.colors, mask, alpha=loaded.alpha)
        with t("encode"):
            if self.encoder == "library":  # what cutout(bytes) returns: rmbg._png, level 1
                data = _io.to_output(rgba, loaded)
            elif self.encoder == "zlib":  # the same without ISA-L (no rmbg[fast])
                data = _png_zlib(rgba)
            else:  # Pillow at rmbg's level, the encoder rmbg used before its own
                data = _pil_png(Image.fromarray(rgba))
            out.write_bytes(data)
        return t.stages

    def library_call(self, path: Path, out: Path) -> float:
        """The same work as one public call: ``cutout(bytes) -> PNG bytes``, then the write."""
        t = time.perf_counter()
        out.write_bytes(self.remover.cutout(path.read_bytes()))
        return time.perf_counter() - t


def build_pipelines(args: argparse.Namespace, cache: Path, work: Path) -> dict[str, Any]:
    """Every pipeline of the comparison, loaded (conversion/quantization first if needed)."""
    import notebook

    from rmbg import BackgroundRemover

    ckpt = args.checkpoint
    pipes: dict[str, Any] = {}
    load: dict[str, float] = {}
    if not args.skip_torch:
        t = time.perf_counter()
        net = notebook.load_net(ckpt)
        load["notebook-torch"] = time.perf_counter() - t
        pipes["notebook-torch"] = lambda p, o: notebook.torch_pipeline(net, p, o)
    ir = cache / "notebook" / "rmbg-1.4.xml"
    ir.parent.mkdir(parents=True, exist_ok=True)
    if not ir.exists():
        notebook.convert(notebook.load_net(ckpt), ir)
    t = time.perf_counter()
    compiled = notebook.compile_ir(ir)
    load["notebook-openvino"] = time.perf_counter() - t
    pipes["notebook-openvino"] = lambda p, o: notebook.openvino_pipeline(compiled, p, o)

    variants = [("rmbg-torch", "torch", "auto")] if not args.skip_torch else []
    variants += [
        ("rmbg-ov-f32", "openvino", "f32"),
        ("rmbg-ov-default", "openvino", "auto"),
        ("rmbg-ov-int8", "openvino", "int8"),
    ]
    removers: dict[str, Any] = {}
    for name, backend, precision in variants:
        t = time.perf_counter()
        r = BackgroundRemover(ckpt, backend=backend, precision=precision, cache_dir=cache)
        r.warmup()
        load[name] = time.perf_counter() - t
        removers[name] = r
        pipes[name] = RmbgPipeline(r)
    pipes["rmbg-ov-default+zlib"] = RmbgPipeline(removers["rmbg-ov-default"], encoder="zlib")
    pipes["rmbg-ov-default+pillow"] = RmbgPipeline(removers["rmbg-ov-default"], encoder="pillow")
    return {"pipes": pipes, "removers": removers, "load_seconds": load, "notebook_ir": ir}


def single_image(
    pipes: dict[str, Any], inputs: dict[str, list[Path]], work: Path, repeats: int
) -> dict[str, Any]:
    """Per-stage latency, interleaved: round r runs every pipeline on every size once."""
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        size: {name: [] for name in pipes} for size in inputs
    }
    library: dict[str, dict[str, list[float]]] = {size: {} for size in inputs}
    for r in range(repeats + 1):  # round 0 warms caches and is dropped
        for size, paths in inputs.items():
            for name, pipe in pipes.items():
                settle()
                stages = pipe(paths[0], work / f"out-{name}-{size}.png")
                if r:
                    runs[size][name].append(stages)
                if r and isinstance(pipe, RmbgPipeline) and pipe.encoder == "library":
                    settle()
                    library[size].setdefault(name, []).append(
                        pipe.library_call(paths[0], work / f"lib-{name}-{size}.png")
                    )
            print(f"  round {r}/{repeats} {size} done", flush=True)
    out: dict[str, Any] = {}
    for size in inputs:
        out[size] = {name: summarise(v) for name, v in runs[size].items()}
        for name, times in library[size].items():
            out[size][name]["library_call"] = min(times)
        for name in pipes:
            out[size][name]["output_bytes"] = (work / f"out-{name}-{size}.png").stat().st_size
    return out


def network_throughput(engine: Any, x: np.ndarray, n: int) -> float:
    """Images per second of the network alone, as the pipeline drives it (n_requests threads)."""
    threads = int(getattr(engine, "n_requests", 1))
    t = time.perf_counter()
    if threads <= 1:
        for _ in range(n):
            engine(x)
    else:
        with cf.ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda _: engine(x), range(n)))
    return n / (time.perf_counter() - t)


def folder(
    pipes: dict[str, Any],
    removers: dict[str, Any],
    inputs: dict[str, list[Path]],
    work: Path,
    rounds: int,
    args: argparse.Namespace,
    cache: Path,
) -> dict[str, Any]:
    """Throughput over a folder: rmbg's cutouts() as the CLI drives it (PNG encoded in the
    workers by the CLI's encoder) against the network alone, with OpenVINO's LATENCY hint (the
    library's default) and THROUGHPUT hint (the CLI's for several files), interleaved round by
    round. The ratio is taken against the *faster* network of the two, so a hint cannot flatter
    it. The notebook's loop runs once."""
    import functools

    from rmbg import BackgroundRemover
    from rmbg.io import encode_image
    from rmbg.preprocess import preprocess

    encode = functools.partial(encode_image, format="png", compress_level=1)
    out: dict[str, Any] = {}
    throughput_removers = {
        name: BackgroundRemover(
            args.checkpoint,
            precision=removers[name].precision,
            cache_dir=cache,
            backend_options={"performance_hint": "THROUGHPUT"},
        )
        for name in ("rmbg-ov-default", "rmbg-ov-int8")
    }
    for size, paths in inputs.items():
        res: dict[str, Any] = {}
        for name in ("rmbg-ov-default", "rmbg-ov-int8"):
            hinted = {"latency": removers[name], "throughput": throughput_removers[name]}
            x = preprocess(np.asarray(Image.open(paths[0]).convert("RGB")), removers[name].spec)
            net_runs: dict[str, list[float]] = {k: [] for k in hinted}
            pipe_runs: dict[str, list[float]] = {k: [] for k in hinted}
            for _ in range(rounds):
                for hint, remover in hinted.items():
                    settle()
                    net_runs[hint].append(network_throughput(remover.engine(), x, len(paths)))
                    settle()
                    t = time.perf_counter()
                    for i, data in enumerate(remover.cutouts(paths, then=encode)):
                        (work / f"folder-{i}.png").write_bytes(data)
                    pipe_runs[hint].append(len(paths) / (time.perf_counter() - t))
            best_net = max(max(v) for v in net_runs.values())  # best round and hint
            res[name] = {"network_images_per_s": best_net}
            for hint in hinted:
                tp = max(pipe_runs[hint])
                res[name][f"network_{hint}_images_per_s"] = max(net_runs[hint])
                res[name][f"pipeline_{hint}_images_per_s"] = tp
                res[name][f"pipeline_{hint}_vs_network"] = tp / best_net
        for name in ("notebook-openvino", "notebook-torch"):
            if name in pipes:
                t = time.perf_counter()
                for i, p in enumerate(paths):
                    pipes[name](p, work / f"nb-folder-{i}.png")
                res[name] = {"images_per_s": len(paths) / (time.perf_counter() - t)}
        out[size] = res
        print(f"  folder {size} done", flush=True)
    return out


def _png_zlib(rgba: np.ndarray) -> bytes:
    """rmbg's PNG encoder on the standard library's zlib (what an install without ISA-L gets)."""
    import zlib

    from rmbg import _png

    real = _png._deflate_module
    _png._deflate_module = lambda: zlib  # type: ignore[assignment]
    try:
        return _png.encode_png(rgba)
    finally:
        _png._deflate_module = real  # type: ignore[assignment]


def _pil_png(im: Any) -> bytes:
    """Pillow at rmbg's level (compress_level=1): what rmbg wrote before its own encoder."""
    from rmbg import io as _io

    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=_io.PNG_COMPRESS_LEVEL)
    return buf.getvalue()


# -- new processes ----------------------------------------------------------------------------------
_CHILD_COLD = """
import sys, time, json
t_import = time.time()
sys.path.insert(0, {src!r})
from rmbg import BackgroundRemover
r = BackgroundRemover({ckpt!r}, cache_dir={cache!r})
m = r.mask({photo!r})
t_first = time.time()
warm = []
for _ in range(3):
    t = time.perf_counter(); r.mask({photo!r}); warm.append(time.perf_counter() - t)
print(json.dumps({{"t_import": t_import, "t_first": t_first, "warm": sorted(warm)[1],
                  "torch_imported": "torch" in sys.modules, "nncf_imported": "nncf" in sys.modules}}))
"""

_CHILD_NOTEBOOK_COLD = """
import sys, time, json
t_import = time.time()
sys.path.insert(0, {bench!r}); sys.path.insert(0, {src!r})
import notebook
from pathlib import Path
compiled = notebook.compile_ir(Path({ir!r}))
import numpy as np
from PIL import Image
from tests.reference import preprocess_image, postprocess_image
import torch
orig_im = np.array(Image.open({photo!r}))
image = preprocess_image(orig_im, [1024, 1024])
result = compiled(image)[0]
mask = postprocess_image(torch.from_numpy(result), orig_im.shape[0:2])
print(json.dumps({{"t_import": t_import, "t_first": time.time()}}))
"""


def _run_child(code: str) -> tuple[float, dict[str, Any]]:
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return t0, data


def cold_start(
    args: argparse.Namespace, cache: Path, ir: Path, inputs: dict[str, list[Path]]
) -> Any:
    """New process, warm cache -> first mask, against a warm call in the same process."""
    out: dict[str, Any] = {}
    for size, paths in inputs.items():
        code = _CHILD_COLD.format(
            src=str(ROOT / "src"), ckpt=str(args.checkpoint), cache=str(cache), photo=str(paths[0])
        )
        runs = []
        for _ in range(args.cold_runs):
            t0, data = _run_child(code)
            runs.append((data["t_first"] - t0, data["warm"], data))
        runs.sort(key=lambda r: r[0])
        cold, warm, data = runs[len(runs) // 2]
        res = {
            "cold_first_mask_s": cold,
            "warm_mask_s": warm,
            "cold_vs_warm": cold / warm,
            "torch_imported": data["torch_imported"],
            "nncf_imported": data["nncf_imported"],
        }
        code = _CHILD_NOTEBOOK_COLD.format(
            bench=str(HERE), src=str(ROOT / "src"), ir=str(ir), photo=str(paths[0])
        )
        t0, data = _run_child(code)
        res["notebook_openvino_cold_first_mask_s"] = data["t_first"] - t0
        out[size] = res
    return out


_CHILD_MEMORY = """
import sys, json, os, io
sys.path.insert(0, {src!r})
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
import numpy as np, PIL.Image
from rmbg import BackgroundRemover
base = status("VmRSS")
r = BackgroundRemover({ckpt!r}, cache_dir={cache!r}, precision={precision!r})
r.warmup()
r.mask(np.zeros((64, 64, 3), np.uint8))
loaded = status("VmRSS")
res = {{"rss_before_model": base, "rss_model_loaded": loaded}}
for what in ("mask", "cutout", "cutout+png"):
    import gc; gc.collect()
    before = status("VmRSS")
    reset_peak()
    if what == "mask":
        out = r.mask({photo!r})
    elif what == "cutout":
        out = r.cutout({photo!r})
    else:
        out = r.cutout({photo!r}, output="png")  # rmbg's encoder, no copy of the RGBA
    res[what] = {{"peak": status("VmHWM"), "rss_before": before}}
    del out
print(json.dumps(res))
"""


def peak_memory(args: argparse.Namespace, cache: Path, work: Path) -> dict[str, Any]:
    """Peak RSS for a 50 MP photo, against the loaded model's footprint (+ 12 bytes/pixel)."""
    size = (8660, 5774)
    photo = make_photo(work / "50MP.jpg", size, 50, "coffee")
    pixels = size[0] * size[1]
    out: dict[str, Any] = {"pixels": pixels}
    for precision in ("auto", "int8"):
        code = _CHILD_MEMORY.format(
            src=str(ROOT / "src"),
            ckpt=str(args.checkpoint),
            cache=str(cache),
            photo=str(photo),
            precision=precision,
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        )
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        res: dict[str, Any] = {
            "model_footprint_bytes": data["rss_model_loaded"] - data["rss_before_model"],
            "rss_model_loaded": data["rss_model_loaded"],
        }
        for what in ("mask", "cutout", "cutout+png"):
            extra = data[what]["peak"] - data["rss_model_loaded"]
            res[what] = {
                "peak_rss": data[what]["peak"],
                "above_loaded_bytes_per_pixel": extra / pixels,
                "target_met": extra <= 12 * pixels,
            }
        out[precision] = res
    return out


# -- explorations -----------------------------------------------------------------------------------
def explore(
    args: argparse.Namespace, cache: Path, removers: dict[str, Any], ir: Path, inputs: Any
) -> dict[str, Any]:
    """The options the issue asks to explore, each measured side by side with rmbg's default."""

    from rmbg.preprocess import preprocess

    out: dict[str, Any] = {}
    default = removers["rmbg-ov-default"]
    f32 = removers["rmbg-ov-f32"]
    photo12 = np.asarray(Image.open(inputs["12MP"][0]).convert("RGB"))
    x = preprocess(photo12, default.spec)
    reps = args.repeats + 2

    def interleaved(fns: dict[str, Callable[[], Any]]) -> dict[str, float]:
        times: dict[str, list[float]] = {k: [] for k in fns}
        for fn in fns.values():
            fn()
        for _ in range(reps):
            for k, fn in fns.items():
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
        return {k: min(v) for k, v in times.items()}

    def guarded(name: str, fn: Callable[[], Any]) -> None:
        try:
            out[name] = fn()
        except Exception as exc:  # one failed exploration must not lose the others
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"  explore {name} done", flush=True)

    def input_sizes() -> Any:
        return _explore_input_size(args, cache, default, f32, photo12, interleaved)

    guarded("input_size", input_sizes)
    guarded("pruning", lambda: _explore_pruning(ir, default, x, interleaved))
    guarded("streams", lambda: _explore_streams(args, cache, default, x))
    guarded("preprocess_in_graph", lambda: _explore_ppp(default, photo12, x, interleaved))
    guarded("postprocess_resize", lambda: _explore_post(default, photo12, x, interleaved))
    guarded("png_encoders", lambda: _explore_png(default, photo12, interleaved))
    return out


def _explore_png(default: Any, photo12: np.ndarray, interleaved: Any) -> Any:
    """PNG encoders on a real 12 MP RGBA cutout: time, size, and a lossless check."""
    from rmbg import _png

    rgba = np.asarray(default.cutout(photo12))

    def pillow(level: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgba).save(buf, "PNG", compress_level=level)
        return buf.getvalue()

    fns: dict[str, Callable[[], bytes]] = {
        "pillow_level6_default": lambda: pillow(6),
        "pillow_level1": lambda: pillow(1),
        f"rmbg_png_{_png.deflate_backend()}": lambda: _png.encode_png(rgba),
        "rmbg_png_zlib": lambda: _png_zlib(rgba),
        "rmbg_png_one_thread": lambda: _png.encode_png(rgba, threads=False),
    }
    with contextlib.suppress(ImportError):
        import imagecodecs

        fns["imagecodecs_png_level1"] = lambda: bytes(imagecodecs.png_encode(rgba, level=1))
    with contextlib.suppress(ImportError):
        import fpng

        fns["fpng"] = lambda: bytes(fpng.from_ndarray(rgba))
    times = interleaved(fns)
    out: dict[str, Any] = {}
    for name, fn in fns.items():
        data = fn()
        with Image.open(io.BytesIO(data)) as im:
            lossless = bool(np.array_equal(np.asarray(im.convert("RGBA")), rgba))
        out[name] = {"seconds": times[name], "megabytes": len(data) / 1e6, "lossless": lossless}
    return out


def _explore_input_size(
    args: argparse.Namespace,
    cache: Path,
    default: Any,
    f32: Any,
    photo12: np.ndarray,
    interleaved: Callable[[dict[str, Callable[[], Any]]], dict[str, float]],
) -> Any:
    """input_size=: network speed and mask quality against f32 at 1024 (held-out + bundled)."""
    from rmbg import BackgroundRemover
    from rmbg.preprocess import preprocess
    from rmbg.quantize import heldout_photos, mask_figures

    sizes = {}
    evaluation = dict(heldout_photos())
    for name in BUNDLED:
        evaluation[name] = np.asarray(
            Image.open(ROOT / "src" / "rmbg" / "data" / "photos" / f"{name}.jpg").convert("RGB")
        )
    ref = {k: f32.predict(v) for k, v in evaluation.items()}
    fns: dict[str, Callable[[], Any]] = {}
    small: dict[int, Any] = {}
    for s in (1024, 768, 512):
        r = (
            default
            if s == 1024
            else BackgroundRemover(args.checkpoint, cache_dir=cache, input_size=s)
        )
        small[s] = r
        xs = preprocess(photo12, r.spec)
        fns[str(s)] = lambda r=r, xs=xs: r.engine()(xs)
    times = interleaved(fns)
    for s, r in small.items():
        figs = [mask_figures(ref[k], r.predict(v)) for k, v in evaluation.items()]
        sizes[str(s)] = {
            "network_s": times[str(s)],
            "speedup_vs_1024": times["1024"] / times[str(s)],
            "min_iou_vs_f32_1024": min(f["iou"] for f in figs),
            "mean_diff_vs_f32_1024": statistics.mean(f["mean_diff"] for f in figs),
            "worst_mean_diff": max(f["mean_diff"] for f in figs),
        }
    return sizes


def _explore_pruning(ir: Path, default: Any, x: np.ndarray, interleaved: Any) -> Any:
    """The notebook's IR (12 outputs, FP16 weights) vs rmbg's (1 output, f32), same config."""
    import openvino as ov

    core = ov.Core()
    nb = core.compile_model(str(ir), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    nb_req = nb.create_infer_request()
    engine = default.engine()
    times = interleaved({"rmbg_ir": lambda: engine(x), "notebook_ir": lambda: nb_req.infer({0: x})})
    return {**times, "speedup": times["notebook_ir"] / times["rmbg_ir"]}


def _explore_streams(args: argparse.Namespace, cache: Path, default: Any, x: np.ndarray) -> Any:
    """LATENCY (1 stream, all cores) vs THROUGHPUT (streams, requests in parallel)."""
    from rmbg import BackgroundRemover

    engine = default.engine()
    tp = BackgroundRemover(
        args.checkpoint, cache_dir=cache, backend_options={"performance_hint": "THROUGHPUT"}
    )
    tp_engine = tp.engine()
    n = 4
    thr = {}
    for _ in range(3):
        thr.setdefault("latency", []).append(network_throughput(engine, x, n))
        thr.setdefault("throughput", []).append(network_throughput(tp_engine, x, n))
    return {
        "latency_images_per_s": max(thr["latency"]),
        "throughput_images_per_s": max(thr["throughput"]),
        "throughput_infer_requests": tp_engine.n_requests,
        "gain": max(thr["throughput"]) / max(thr["latency"]),
    }


def _explore_ppp(default: Any, photo12: np.ndarray, x: np.ndarray, interleaved: Any) -> Any:
    """Pre-processing inside the graph: u8 NHWC input of the photo's size, resize and normalise
    by OpenVINO (a static shape per input size: compiled for this photo)."""
    import openvino as ov

    from rmbg.postprocess import postprocess
    from rmbg.preprocess import preprocess
    from rmbg.quantize import mask_figures

    core = ov.Core()
    engine = default.engine()
    model = core.read_model(str(default._backend.model_path()))
    ppp = ov.preprocess.PrePostProcessor(model)
    h, w = photo12.shape[:2]
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_shape(
        [1, h, w, 3]
    )
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).resize(
        ov.preprocess.ResizeAlgorithm.RESIZE_LINEAR
    ).scale(255.0).mean(0.5)
    in_graph = core.compile_model(ppp.build(), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    req = in_graph.create_infer_request()
    batch = photo12[None]
    times = interleaved(
        {
            "numpy_pre_plus_network": lambda: engine(preprocess(photo12, default.spec)),
            "in_graph": lambda: req.infer({0: batch}),
        }
    )
    req.infer({0: batch})
    mask_graph = postprocess(np.array(req.get_output_tensor(0).data), (h, w))
    mask_numpy = postprocess(engine(x), (h, w))
    return {
        **times,
        "speedup": times["numpy_pre_plus_network"] / times["in_graph"],
        "mask_vs_numpy": mask_figures(mask_numpy, mask_graph),
    }


def _explore_post(default: Any, photo12: np.ndarray, x: np.ndarray, interleaved: Any) -> Any:
    """A cheaper post-processing resize: Pillow's bilinear on the float mask."""
    from rmbg.postprocess import postprocess
    from rmbg.quantize import mask_figures

    h, w = photo12.shape[:2]
    raw = default.engine()(x)

    def pillow_post() -> np.ndarray:
        small_mask = Image.fromarray(raw[0, 0])
        big = np.asarray(small_mask.resize((w, h), Image.Resampling.BILINEAR))
        lo, hi = big.min(), big.max()
        return ((big - lo) / (hi - lo) * 255).astype(np.uint8)

    times = interleaved({"numpy_exact": lambda: postprocess(raw, (h, w)), "pillow": pillow_post})
    return {
        **times,
        "speedup": times["numpy_exact"] / times["pillow"],
        "mask_vs_exact": mask_figures(postprocess(raw, (h, w)), pillow_post()),
    }


# -- report -----------------------------------------------------------------------------------------
def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured figure and verdict."""
    rows: list[dict[str, Any]] = []
    s12 = res["single"]["12MP"]

    def add(name: str, value: float | None, op: str, bar: float, note: str = "") -> None:
        ok = None if value is None else (value >= bar if op == ">=" else value <= bar)
        rows.append({"target": name, "value": value, "bar": f"{op} {bar}", "met": ok, "note": note})

    default = s12["rmbg-ov-default"]["total"]
    zlib_only = s12["rmbg-ov-default+zlib"]["total"]
    for label, total in (("rmbg default", default), ("default, no ISA-L", zlib_only)):
        if "notebook-torch" in s12:
            add(
                f"12MP vs notebook PyTorch ({label})",
                s12["notebook-torch"]["total"] / total,
                ">=",
                4,
            )
        add(
            f"12MP vs notebook OpenVINO ({label})",
            s12["notebook-openvino"]["total"] / total,
            ">=",
            2.5,
        )
    for name, label in (("rmbg-ov-default", "rmbg default"), ("rmbg-ov-default+zlib", "no ISA-L")):
        add(
            f"12MP end-to-end / network ({label})",
            s12[name]["total"] / s12[name]["network"],
            "<=",
            1.3,
        )
    for size in ("12MP", "1MP"):
        f = res["folder"][size]["rmbg-ov-default"]
        for hint, label in (("throughput", "CLI, THROUGHPUT"), ("latency", "LATENCY")):
            add(
                f"{size} folder / best network throughput ({label})",
                f[f"pipeline_{hint}_vs_network"],
                ">=",
                0.9,
            )
    int8 = s12["rmbg-ov-default"]["network"] / s12["rmbg-ov-int8"]["network"]
    add("INT8 network speed-up vs default", int8, ">=", 1.3)
    q = res.get("int8_quality") or {}
    if q:
        add("INT8 min IoU vs f32 (held-out)", q["min_iou"], ">=", 0.99)
        add("INT8 max mean diff vs f32 (held-out)", q["max_mean_diff"], "<=", 2)
    for size, c in res.get("cold_start", {}).items():
        add(
            f"cold start / warm call ({size})",
            c["cold_vs_warm"],
            "<=",
            2.5,
            "torch imported" if c["torch_imported"] else "torch not imported",
        )
    mem = res.get("memory", {}).get("auto")
    if mem:
        for what in ("mask", "cutout", "cutout+png"):
            add(
                f"50MP {what}: bytes/pixel above loaded model",
                mem[what]["above_loaded_bytes_per_pixel"],
                "<=",
                12,
            )
    return rows


def print_report(res: dict[str, Any]) -> None:
    print()
    print(
        f"machine: {res['machine'].get('cpu')} ({res['machine']['cores']} cores, "
        f"{', '.join(res['machine'].get('isa', []))}), load {res['machine']['load_average_start']}"
    )
    for size, table in res["single"].items():
        print(
            f"\nsingle {size} JPEG -> RGBA PNG, model loaded (best of {res['settings']['repeats']} "
            "interleaved rounds, seconds; ratio = notebook OpenVINO total / this total)"
        )
        base = table["notebook-openvino"]["total"]
        print(
            f"{'pipeline':28s}" + "".join(f"{s:>9s}" for s in (*STAGES, "total")) + f"{'ratio':>8s}"
        )
        for name, st in table.items():
            cells = "".join(f"{st.get(s, 0.0):9.3f}" for s in (*STAGES, "total"))
            print(f"{name:28s}{cells}{base / st['total']:8.2f}")
    print("\nfolder throughput (images/s)")
    for size, table in res["folder"].items():
        for name, v in table.items():
            print(f"  {size} {name}: " + ", ".join(f"{k}={val:.3g}" for k, val in v.items()))
    if "cold_start" in res:
        print("\ncold start:", json.dumps(res["cold_start"], indent=1))
    if "memory" in res:
        print("peak memory:", json.dumps(res["memory"], indent=1))
    if "explore" in res:
        print("explorations:", json.dumps(res["explore"], indent=1))
    print("\ntargets")
    for row in res["targets"]:
        verdict = {True: "met", False: "MISSED", None: "n/a"}[row["met"]]
        value = "n/a" if row["value"] is None else f"{row['value']:.3f}"
        print(f"  {row['target']:58s} {value:>9s} {row['bar']:>8s}  {verdict} {row['note']}")


def common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint`` (default: ``$RMBG_TEST_CHECKPOINT``, else the stand-in's folder),
    ``--out`` (the results folder) and ``--cache`` (converted models): every benchmark's."""
    default_ckpt = os.environ.get("RMBG_TEST_CHECKPOINT") or str(
        Path.home() / ".cache" / "rmbg-ci" / "standin"
    )
    parser.add_argument("--checkpoint", type=Path, default=Path(default_ckpt))
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "rmbg-bench")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folder-size", type=int, default=6)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 repeat, small folder, no explore")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--skip", default="", help="comma list: folder,cold,memory,explore")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "performance.png")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.folder_size, args.cold_runs = 1, 2, 1
        args.skip = ",".join(filter(None, [args.skip, "explore"]))
    skip = set(filter(None, args.skip.split(",")))
    if not (args.checkpoint / "model.safetensors").is_file():
        parser.error(f"no checkpoint at {args.checkpoint} (set RMBG_TEST_CHECKPOINT)")

    args.cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rmbg-bench-"))
    photo_dir = args.cache / "photos"
    photo_dir.mkdir(exist_ok=True)
    res: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    res["settings"] = {k: str(v) for k, v in vars(args).items()}
    inputs = photos(photo_dir, args.folder_size)
    print("loading pipelines (first run: conversion and INT8 calibration)...", flush=True)
    built = build_pipelines(args, args.cache, work)
    pipes, removers = built["pipes"], built["removers"]
    res["load_seconds"] = built["load_seconds"]
    info = removers["rmbg-ov-int8"].info
    res["int8_quality"] = dict(info.details.get("quantization") or {})
    res["engines"] = {
        name: {
            "inference_precision": r.info.inference_precision,
            "device": r.info.device,
            "execution_devices": list(r.info.execution_devices),
        }
        for name, r in removers.items()
    }
    print("single-image latency...", flush=True)
    res["single"] = single_image(pipes, {k: v[:1] for k, v in inputs.items()}, work, args.repeats)
    if "folder" not in skip:
        print("folder throughput...", flush=True)
        rounds = max(1, min(3, args.repeats))
        res["folder"] = folder(pipes, removers, inputs, work, rounds, args, args.cache)
    if "cold" not in skip:
        print("cold start...", flush=True)
        res["cold_start"] = cold_start(args, args.cache, built["notebook_ir"], inputs)
    if "memory" not in skip:
        print("peak memory (50 MP)...", flush=True)
        res["memory"] = peak_memory(args, args.cache, photo_dir)
    if "explore" not in skip:
        print("explorations...", flush=True)
        res["explore"] = explore(args, args.cache, removers, built["notebook_ir"], inputs)
    res["machine"]["load_average_end"] = os.getloadavg()
    res["targets"] = targets(res) if "folder" in res else []
    print_report(res)

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(res, indent=1, default=str)
    (args.out / f"{platform.node()}-{stamp}.json").write_text(text)
    (args.out / "latest.json").write_text(text)
    try:
        import plot

        plot.render(res, args.plot)
        print(f"\nplot: {args.plot}")
    except ImportError as exc:  # matplotlib is in the bench extra
        print(f"\nno plot ({exc}); pip install 'rmbg[bench]'")
    print(f"results: {args.out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
