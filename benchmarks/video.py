"""Video benchmark: remover.video() frames/s against the network alone, and smoothing's effect.

Run it with::

    python benchmarks/video.py [--checkpoint DIR] [--frames 48] [--out benchmarks/results]

On the stand-in checkpoint (``RMBG_TEST_CHECKPOINT`` or ``~/.cache/rmbg-ci/standin``), in one
process so that a busy machine slows everything alike and the *ratios* hold:

1. throughput: a synthetic 1080p clip (``rmbg.video.synthetic``, with audio; ``--size 1080x1920``
   for a portrait one) through ``remover.video()`` into WebM VP9 with alpha and ProRes 4444,
   against the network alone driven the way the pipeline drives it (``benchmarks/bench.py``'s
   ``network_throughput``), with
   OpenVINO's LATENCY hint (the library's default) and THROUGHPUT hint; the ratio is taken against
   the faster network. Target: >= 0.85x.
2. smoothing: a noisy clip whose disc stands still, then glides (fast: across the frame; slow:
   1.5 px per frame, where the motion gate is least sure). The network's raw masks are
   made once; each ``smoothing=`` strength is applied to them, and flicker (mean change between
   frames where nothing moves, and on the still disc's rim), lag (how far smoothed masks trail
   raw ones where the edge has just moved) and error against the true disc are reported.

Writes ``<out>/video-<host>-<date>.json`` and ``<out>/video-latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

STRENGTHS = (0.0, 0.3, 0.5, 0.7, 0.9)


def _checkpoint() -> Path:
    env = os.environ.get("RMBG_TEST_CHECKPOINT")
    return Path(env) if env else Path.home() / ".cache" / "rmbg-ci" / "standin"


def decode_rgb(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


def throughput(args: argparse.Namespace, work: Path, cache: Path) -> dict[str, Any]:
    from bench import network_throughput

    from rmbg import BackgroundRemover
    from rmbg.preprocess import preprocess
    from rmbg.video.synthetic import make_clip

    width, height = args.size
    clip = make_clip(work / "clip.mp4", size=(width, height), frames=args.frames, audio=True)
    first = decode_rgb(clip.path)[0]
    removers = {
        hint: BackgroundRemover(
            args.checkpoint, cache_dir=cache, backend_options={"performance_hint": hint.upper()}
        )
        for hint in args.hints
    }
    x = preprocess(first, next(iter(removers.values())).spec)
    out: dict[str, Any] = {"frames": args.frames, "size": [width, height]}
    nets: list[float] = []
    for hint, remover in removers.items():
        remover.warmup()
        net = network_throughput(remover.engine(), x, args.frames)
        nets.append(net)
        out[f"network_{hint}_fps"] = net
        print(f"  network alone ({hint}): {net:.2f} frames/s", flush=True)
        for suffix in args.formats:
            t = time.perf_counter()
            result = remover.video(clip.path, work / f"out-{hint}.{suffix}")
            fps = result.frames / (time.perf_counter() - t)
            out[f"video_{suffix}_{hint}_fps"] = fps
            print(f"  video -> {suffix} ({hint}): {fps:.2f} frames/s", flush=True)
    best = max(nets)
    out["network_best_fps"] = best
    for key in list(out):
        if key.startswith("video_"):
            out[key.replace("_fps", "_vs_network")] = out[key] / best
    out["engines"] = {hint: str(r.info) for hint, r in removers.items()}
    return out


def smoothing(
    args: argparse.Namespace, work: Path, cache: Path, speed: float | None
) -> dict[str, Any]:
    from rmbg import BackgroundRemover
    from rmbg.video.smoothing import TemporalSmoother, flicker, lag
    from rmbg.video.synthetic import make_clip

    pause = args.smooth_frames // 3
    clip = make_clip(
        work / "noisy.mkv",
        size=(480, 270),
        frames=args.smooth_frames,
        pause=pause,
        noise=args.noise,
        codec="ffv1",
        seed=1,
        speed=speed,
    )
    frames = decode_rgb(clip.path)
    remover = BackgroundRemover(args.checkpoint, cache_dir=cache)
    raw = list(remover.masks(frames, output="array"))
    disc = clip.truth[0]
    rim = disc ^ np.pad(disc, 3, mode="edge")[3:-3, 6:]  # the still disc's right-hand rim
    rim |= disc & ~np.pad(disc, 3)[6:, 3:-3]
    swept = clip.swept()
    res: dict[str, Any] = {
        "size": [480, 270],
        "frames": args.smooth_frames,
        "still_frames": pause,
        "noise_sigma": args.noise,
        "speed_px_per_frame": speed if speed is not None else "crosses the frame",
    }
    rows = {}
    for s in STRENGTHS:
        smoother = TemporalSmoother(s)
        sm = [smoother(f, m) for f, m in zip(frames, raw, strict=True)]
        truth_err = float(
            np.mean(
                [
                    np.abs(m.astype(int) - 255 * t).mean()
                    for m, t in zip(sm, clip.truth, strict=True)
                ]
            )
        )
        rows[str(s)] = {
            "flicker_background": flicker(sm, clip.still),
            "flicker_still_edge": flicker(sm[:pause], rim),
            "lag_moving_edge": lag(sm[pause:], raw[pause:], swept[pause:]),
            "error_vs_truth": truth_err,
        }
    res["by_strength"] = rows
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=_checkpoint())
    parser.add_argument("--frames", type=int, default=48, help="frames of the throughput clip")
    parser.add_argument(
        "--size",
        type=lambda text: tuple(int(v) for v in text.lower().split("x")),
        default=(1920, 1080),
        help="WxH of the throughput clip (default 1920x1080; 1080x1920: a portrait phone clip, "
        "whose ProRes is encoded on one thread)",
    )
    parser.add_argument("--formats", nargs="+", default=["webm", "mov"])
    parser.add_argument("--hints", nargs="+", default=["latency", "throughput"])
    parser.add_argument("--smooth-frames", type=int, default=30)
    parser.add_argument("--noise", type=float, default=4.0, help="sensor noise sigma")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-smoothing", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    cache = Path(os.environ.get("RMBG_CACHE_DIR", Path.home() / ".cache" / "rmbg"))
    report: dict[str, Any] = {
        "machine": {
            "host": platform.node(),
            "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_avg_at_start": os.getloadavg(),
        },
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for label, speed in () if args.skip_smoothing else (("fast", None), ("slow", 1.5)):
            print(f"smoothing, {label} subject (flicker and lag per strength)...", flush=True)
            report[f"smoothing_{label}"] = smoothing(args, work, cache, speed)
            for s, row in report[f"smoothing_{label}"]["by_strength"].items():
                print(
                    f"  smoothing={s}: flicker background {row['flicker_background']:.3f}, "
                    f"still edge {row['flicker_still_edge']:.3f}, "
                    f"lag {row['lag_moving_edge']:.3f}, "
                    f"error vs truth {row['error_vs_truth']:.2f} (grey levels)",
                    flush=True,
                )
        if not args.skip_throughput:
            print(
                f"throughput ({args.size[0]}x{args.size[1]}, {args.frames} frames)...", flush=True
            )
            report["throughput"] = throughput(args, work, cache)
            for k, v in report["throughput"].items():
                if k.endswith("_vs_network"):
                    print(f"  {k}: {v:.2f}x", flush=True)
    report["machine"]["load_avg_at_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"video-{platform.node()}-{time.strftime('%Y%m%d-%H%M')}.json"
    for path in (args.out / name, args.out / "video-latest.json"):
        path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
