"""Smoke run of an install without PyTorch (``nox -s notorch``; not a pytest module).

Usage: ``python tests/notorch_smoke.py CHECKPOINT WORKDIR [--no-int8]``. In a fresh environment
where rmbg was installed without torch: checks that torch cannot be imported, cuts out a bundled
photo through the library (empty cache: the IR is built from the checkpoint), through the CLI's
``main`` in this process and through the ``rmbg`` console script in another, quantizes to INT8
(NNCF), and checks that torch was never imported. Exits non-zero with a message on any failure.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path


def _check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"notorch smoke: FAILED: {message}")


def main(argv: list[str]) -> int:
    checkpoint, work = Path(argv[0]), Path(argv[1])
    int8 = "--no-int8" not in argv[2:]
    _check(importlib.util.find_spec("torch") is None, "torch is installed in this environment")
    import numpy as np

    from rmbg import BackendUnavailableError, BackgroundRemover, cli

    photo = Path(str(resources.files("rmbg").joinpath("data", "photos", "astronaut.jpg")))
    cache = work / "rmbg-cache"

    t0 = time.perf_counter()
    remover = BackgroundRemover(checkpoint, cache_dir=cache, device="CPU")
    cut = remover.cutout(photo)
    first = time.perf_counter() - t0
    alpha = np.asarray(cut)[..., 3]
    _check(cut.mode == "RGBA" and cut.size == (512, 512), f"cutout is {cut.mode} {cut.size}")
    _check(alpha[256, 256] > 200 and alpha[5, 5] < 50, "the cutout does not keep the astronaut")
    print(f"library: first cutout in {first:.1f} s ({remover.info.inference_precision})")

    out = work / "cli-cutout.png"
    _check(
        cli.main(["cutout", str(photo), "--model", str(checkpoint), "--cache-dir", str(cache),
                  "-o", str(out), "--overwrite"]) == 0,
        "rmbg cutout (in process) failed",
    )  # fmt: skip
    _check(out.is_file(), f"rmbg cutout wrote no {out}")
    script = Path(sys.executable).with_name("rmbg")
    proc = subprocess.run(
        [str(script), "mask", str(photo), "--model", str(checkpoint), "--cache-dir", str(cache),
         "-o", str(work / "cli-mask.png"), "--overwrite"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    _check(proc.returncode == 0, f"the rmbg console script failed: {proc.stderr}")
    print("CLI: cutout (in process) and mask (console script) ok")

    if int8:
        t0 = time.perf_counter()
        quantized = BackgroundRemover(checkpoint, precision="int8", cache_dir=cache, device="CPU")
        mask = np.asarray(quantized.mask(photo))
        report = quantized.info.details["quantization"]
        _check(bool(report["passed"]), f"INT8 missed the bar: {report}")
        _check(mask[256, 256] > 200 and mask[5, 5] < 50, "the INT8 mask is wrong")
        print(
            f"int8: quantized in {time.perf_counter() - t0:.0f} s, held-out IoU >= "
            f"{report['min_iou']:.4f}"
        )

    try:
        BackgroundRemover(checkpoint, backend="torch")
    except BackendUnavailableError as exc:
        _check('pip install "rmbg[torch]"' in str(exc), f"unhelpful torch error: {exc}")
    else:
        _check(False, "backend='torch' worked without torch")
    _check("torch" not in sys.modules, "torch was imported")
    _check(importlib.util.find_spec("torch") is None, "torch became importable")
    print("notorch smoke: ok (torch never imported, not installed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
