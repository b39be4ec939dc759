"""Edge-colour decontamination (``refine_foreground=True``): accuracy, speed and memory.

Synthetic composites with a known answer: a foreground ``F`` with a known soft alpha ``a`` (a
feathered silhouette with hair-like strands) over backgrounds that contrast with it,
``I = a*F + (1 - a)*B`` rounded to uint8. For each scene it prints the mean absolute error of the
foreground colour against ``F`` on the soft pixels (``0.05 < a < 0.95``), using ``I`` as it is
(what a cutout without refinement shows) and using ``rmbg.compose.estimate_foreground``; then the
error that is actually visible once the cutout is laid over a new mid-grey background (colour error
weighted by ``a``). Then the time and the peak extra memory (tracemalloc: numpy's allocations) on a
12-megapixel image, and, if pymatting is installed, its multi-level estimator for comparison.

Run: ``PYTHONPATH=src python benchmarks/decontamination.py [--repeat N] [--no-pymatting]``
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from rmbg.compose import FOREGROUND_BAND_BYTES, estimate_foreground

Scene = tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float64]]


def silhouette(h: int, w: int, strands: bool = True) -> NDArray[np.float64]:
    """A soft disc (a 25 px ramp) with radial strands (hair) 60 px long around it, in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r0 = 0.3 * min(h, w)
    r = np.hypot(xx - w / 2, yy - h / 2)
    a = np.clip((r0 - r) / 25 + 0.5, 0, 1)
    if strands:
        theta = np.arctan2(yy - h / 2, xx - w / 2)
        hair = (0.5 + 0.5 * np.sin(theta * 90)) ** 3 * np.clip(1 - (r - r0) / 60, 0, 1)
        a = np.where(r > r0, np.maximum(a, 0.9 * hair), a)
    return a


def composite(fg: NDArray[np.float64], bg: NDArray[np.float64], a: NDArray[np.float64]) -> Scene:
    a8 = np.rint(a * 255).astype(np.uint8)
    af = a8[..., None] / 255.0
    image = np.rint(af * fg + (1 - af) * bg).astype(np.uint8)
    return image, a8, fg


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
    }


def errors(est: NDArray[np.uint8], scene: Scene) -> tuple[float, float]:
    """(MAE of the colour on 0.05 < a < 0.95, MAE of the colour x a: what shows over a new
    background), in grey levels."""
    _, a8, fg = scene
    soft = (a8 > 0.05 * 255) & (a8 < 0.95 * 255)
    diff = np.abs(est.astype(np.float64) - fg)[soft]
    weight = (a8[soft] / 255.0)[:, None]
    return float(diff.mean()), float((diff * weight).mean())


def timed(fn: Callable[[], NDArray[np.uint8]], repeat: int) -> tuple[float, int]:
    best, peak = float("inf"), 0
    for _ in range(repeat):
        tracemalloc.start()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
        peak = max(peak, tracemalloc.get_traced_memory()[1] - out.nbytes)
        tracemalloc.stop()
        del out
    return best, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timing runs (best is reported)")
    parser.add_argument("--no-pymatting", action="store_true", help="skip the pymatting comparison")
    args = parser.parse_args()

    ml: Callable[[NDArray[np.uint8], NDArray[np.uint8]], NDArray[np.uint8]] | None = None
    if not args.no_pymatting:
        try:
            from pymatting import estimate_foreground_ml  # type: ignore[import-not-found]

            def ml(image: NDArray[np.uint8], alpha: NDArray[np.uint8]) -> NDArray[np.uint8]:
                f = estimate_foreground_ml(image / 255.0, alpha / 255.0)
                return np.clip(np.rint(f * 255), 0, 255).astype(np.uint8)

            ml(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))  # numba compile
        except ImportError:
            ml = None

    wide = (270, 6)
    print("Edge colour error (mean |F_est - F| in grey levels on pixels with 0.05 < alpha < 0.95;")
    print("in brackets: the same weighted by alpha, i.e. what shows over a new background)\n")
    header = f"{'scene':28s} {'I as is':>15s} {'(90, 6) default':>22s} {wide!s:>22s}"
    print(header + (f" {'pymatting ML':>15s}" if ml else ""))
    for name, scene in scenes().items():
        image, a8, _ = scene
        before = errors(image, scene)
        line = f"{name:28s} {before[0]:6.2f} ({before[1]:5.2f})"
        for sizes in ((90, 6), wide):
            after = errors(estimate_foreground(image, a8, sizes=sizes), scene)
            line += f" {after[0]:6.2f} ({after[1]:5.2f}) {before[0] / after[0]:4.1f}x"
        if ml:
            other = errors(ml(image, a8), scene)
            line += f" {other[0]:6.2f} ({other[1]:5.2f})"
        print(line)

    h, w = 3000, 4000
    image, a8, _ = composite(
        np.full((h, w, 3), (225.0, 180.0, 130.0)),
        np.full((h, w, 3), (20.0, 90.0, 230.0)),
        silhouette(h, w, strands=False),
    )
    seconds, extra = timed(lambda: estimate_foreground(image, a8), args.repeat)
    print(
        f"\n12 MP ({w}x{h}) blur-fusion: {seconds:.2f} s, peak extra memory {extra / 2**20:.0f} MiB"
    )
    print(
        f"  (besides the {h * w * 3 / 2**20:.0f} MiB result; budget FOREGROUND_BAND_BYTES = "
        f"{FOREGROUND_BAND_BYTES / 2**20:.0f} MiB, i.e. {extra / (h * w):.1f} B per image pixel)"
    )
    if ml:
        seconds, extra = timed(lambda: ml(image, a8), 1)
        print(
            f"12 MP pymatting estimate_foreground_ml: {seconds:.2f} s, peak extra memory "
            f"{extra / 2**20:.0f} MiB"
        )


if __name__ == "__main__":
    main()
