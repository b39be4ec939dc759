"""Edge-colour decontamination (``refine_foreground=True``): accuracy, speed and memory.

Synthetic composites with a known answer: a foreground ``F`` with a known soft alpha ``a`` (a
feathered silhouette with hair-like strands) over backgrounds that contrast with it,
``I = a*F + (1 - a)*B`` rounded to uint8. The soft edges are as wide as those of a 1024-pixel mask
upsampled to 12 megapixels (a 25 px ramp and 60 px strands at 800x600; four times that at 12 MP).
For each scene it prints the mean absolute error of the foreground colour against ``F`` on the soft
pixels (``0.05 < a < 0.95``): using ``I`` as it is (what a cutout without refinement shows), and
the estimates of ``rmbg.compose.estimate_foreground`` -- the default multi-level estimator and
blur-fusion with the paper's box sizes ``(90, 6)`` and a wider ``(270, 6)`` -- and, if installed,
pymatting's ``estimate_foreground_ml`` (the original multi-level code; numba). In brackets: the
same weighted by ``a``, i.e. the error that shows once the cutout is laid over a new background.

Then, on a 12-megapixel scene, the error, the time (best of ``--repeat`` runs) and the peak memory
beyond the ``HxWx3`` result (tracemalloc, in a separate run: numpy's allocations) of each method.

Run: ``PYTHONPATH=src python benchmarks/decontamination.py [--repeat N] [--no-pymatting]``
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from rmbg.decontaminate import estimate_foreground

Scene = tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float64]]
Method = Callable[[NDArray[np.uint8], NDArray[np.uint8]], NDArray[np.uint8]]

PHOTOS = Path(__file__).resolve().parents[1] / "src" / "rmbg" / "data" / "photos"


def silhouette(h: int, w: int, strands: bool = True, scale: float = 1.0) -> NDArray[np.float64]:
    """A soft disc (a ``25 * scale`` px ramp) with radial strands (hair) ``60 * scale`` px long
    around it, in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r0 = 0.3 * min(h, w)
    r = np.hypot(xx - w / 2, yy - h / 2)
    a = np.clip((r0 - r) / (25 * scale) + 0.5, 0, 1)
    if strands:
        theta = np.arctan2(yy - h / 2, xx - w / 2)
        hair = (0.5 + 0.5 * np.sin(theta * 90)) ** 3 * np.clip(1 - (r - r0) / (60 * scale), 0, 1)
        a = np.where(r > r0, np.maximum(a, 0.9 * hair), a)
    return a


def composite(fg: NDArray[np.float64], bg: NDArray[np.float64], a: NDArray[np.float64]) -> Scene:
    a8 = np.rint(a * 255).astype(np.uint8)
    af = a8[..., None] / 255.0
    image = np.rint(af * fg + (1 - af) * bg).astype(np.uint8)
    return image, a8, fg


def photo(name: str, w: int, h: int) -> NDArray[np.float64]:
    with Image.open(PHOTOS / f"{name}.jpg") as im:
        return np.asarray(im.convert("RGB").resize((w, h), Image.Resampling.LANCZOS), np.float64)


def scenes(h: int = 600, w: int = 800) -> dict[str, Scene]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(0)
    ones = np.ones((h, w))
    a = silhouette(h, w)
    skin = np.stack([225 * ones, 170 + 20 * yy / h, 130 * ones], -1)
    textured = np.stack(
        [200 + 40 * np.sin(xx / 37), 120 + 60 * np.cos(yy / 53), 60 + 30 * np.sin((xx + yy) / 71)],
        -1,
    )
    blue = np.stack([20 * ones, 60 + 100 * xx / w, 230 * ones], -1)
    green = np.stack([30 * ones, 200 * ones, 40 * ones], -1)
    noise = np.clip(
        128
        + 90 * np.sin(xx / 13)[..., None] * np.cos(yy / 17)[..., None]
        + rng.normal(0, 20, (h, w, 3)),
        0,
        255,
    )
    return {
        "smooth fg / blue gradient": composite(skin, blue, a),
        "smooth fg / green screen": composite(skin, green, a),
        "textured fg / blue gradient": composite(textured, blue, a),
        "smooth fg / busy background": composite(skin, noise, a),
        "dark hair / white": composite(
            np.stack([40 * ones, 25 * ones, 20 * ones], -1), 255 * ones[..., None] * np.ones(3), a
        ),
        "photo (cat) / photo (coffee)": composite(photo("chelsea", w, h), photo("coffee", w, h), a),
        "photo (astronaut) / (rocket)": composite(
            photo("astronaut", w, h), photo("rocket", w, h), a
        ),
    }


def errors(est: NDArray[np.uint8], scene: Scene) -> tuple[float, float]:
    """(MAE of the colour on 0.05 < a < 0.95, MAE of the colour x a: what shows over a new
    background), in grey levels."""
    _, a8, fg = scene
    soft = (a8 > 0.05 * 255) & (a8 < 0.95 * 255)
    diff = np.abs(est.astype(np.float64) - fg)[soft]
    weight = (a8[soft] / 255.0)[:, None]
    return float(diff.mean()), float((diff * weight).mean())


def timed(fn: Callable[[], NDArray[np.uint8]], repeat: int) -> tuple[float, int, NDArray[np.uint8]]:
    """Best time of ``repeat`` runs, then the peak traced memory beyond the result in one more run
    (tracemalloc slows allocations down, so it is kept out of the timed runs), and the result."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
        del out
    tracemalloc.start()
    out = fn()
    peak = tracemalloc.get_traced_memory()[1] - out.nbytes
    tracemalloc.stop()
    return best, peak, out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timing runs (best is reported)")
    parser.add_argument("--no-pymatting", action="store_true", help="skip the pymatting comparison")
    args = parser.parse_args()

    methods: dict[str, Method] = {
        "multi-level": lambda image, a: estimate_foreground(image, a),
        "blur (90, 6)": lambda image, a: estimate_foreground(image, a, sizes=(90, 6)),
        "blur (270, 6)": lambda image, a: estimate_foreground(image, a, sizes=(270, 6)),
    }
    if not args.no_pymatting:
        try:
            from pymatting import estimate_foreground_ml  # type: ignore[import-not-found]

            def ml(image: NDArray[np.uint8], alpha: NDArray[np.uint8]) -> NDArray[np.uint8]:
                f = estimate_foreground_ml(image / 255.0, alpha / 255.0)
                return np.clip(np.rint(f * 255), 0, 255).astype(np.uint8)

            ml(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))  # numba compile
            methods["pymatting ML"] = ml
        except ImportError:
            pass

    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical cores; numpy {np.__version__}\n")
    print("Edge colour error (mean |F_est - F| in grey levels on pixels with 0.05 < alpha < 0.95;")
    print("in brackets: the same weighted by alpha, i.e. what shows over a new background;")
    print("then how many times smaller than the image's own error), 800x600:\n")
    print(f"{'scene':30s} {'image as is':>14s}" + "".join(f" {m:>22s}" for m in methods))
    for name, scene in scenes().items():
        image, a8, _ = scene
        before = errors(image, scene)
        line = f"{name:30s} {before[0]:6.2f} ({before[1]:5.2f})"
        for method in methods.values():
            after = errors(method(image, a8), scene)
            ratio = before[0] / after[0]
            line += f" {after[0]:6.2f} ({after[1]:5.2f}) {ratio:5.{1 if ratio < 100 else 0}f}x"
        print(line)

    h, w = 3000, 4000
    yy = np.linspace(0, 1, h)[:, None, None]
    scene = composite(
        np.broadcast_to(np.array([225.0, 170.0, 130.0]) + [0.0, 20.0, 0.0] * yy, (h, w, 3)),
        np.broadcast_to(np.array([20.0, 90.0, 230.0]), (h, w, 3)),
        silhouette(h, w, scale=4.0),
    )
    image, a8, _ = scene
    before = errors(image, scene)
    print(
        f"\n12 MP ({w}x{h}, skin over blue, a 100 px ramp and 240 px strands); the image as is: "
        f"{before[0]:.2f} ({before[1]:.2f})"
    )
    print(f"{'method':16s} {'error':>16s} {'time':>8s} {'peak extra memory':>18s}")
    for label, method in methods.items():
        if label == "blur (270, 6)":
            continue  # its bands re-read 270 rows of context: ~10x the time of (90, 6)
        repeat = 1 if label == "pymatting ML" else args.repeat
        seconds, extra, out = timed(functools.partial(method, image, a8), repeat)
        after = errors(out, scene)
        print(
            f"{label:16s} {after[0]:6.2f} ({after[1]:5.2f}) {seconds:7.2f}s "
            f"{extra / 2**20:14.0f} MiB"
        )
    print(f"(the HxWx3 result itself: {h * w * 3 / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
