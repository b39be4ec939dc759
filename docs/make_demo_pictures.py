"""Make the pictures of ``docs/demo.md``: a screenshot of the browser demo and the result figure.

Both are made by rmbg itself on a bundled photo, with a real checkpoint (``--model``, else
``$RMBG_MODEL``, else ``briaai/RMBG-1.4``); the project's were made with the offline stand-in on
OpenVINO, in headless Chromium (Debian's ``chromium`` package)::

    RMBG_MODEL=~/.cache/rmbg-ci/standin PYTHONPATH=src python docs/make_demo_pictures.py

Needs the ``demo`` and ``plot`` extras and ``playwright`` (the Python package only: it drives the
system's Chromium, ``--chromium``).
"""

from __future__ import annotations

import argparse
import io
import os
import socket
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from rmbg import BackgroundRemover
from rmbg.demo import run_demo
from rmbg.photos import bundled_photos
from rmbg.plot import compare

HERE = Path(__file__).resolve().parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def screenshot(remover: BackgroundRemover, photo: Path, out: Path, chromium: str) -> None:
    """The demo with ``photo`` cut out, the before/after slider half way."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    app = run_demo(remover, port=port, block=False)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(120_000)
                page.goto(f"http://127.0.0.1:{port}/")
                page.locator("#rmbg-photo input[type=file]").set_input_files(str(photo))
                page.wait_for_load_state("networkidle")
                page.locator("#rmbg-run").click()
                page.wait_for_function(
                    """() => {
                        const t = document.querySelector('#rmbg-timings').innerText;
                        const img = document.querySelector('#rmbg-slider img');
                        return t.includes('in all') && img && img.complete
                            && !document.body.innerText.includes('processing');
                    }"""
                )
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(500)  # let the slider settle
                shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
                # 256 colours: a third of the size, and the page's flat colours stay exact
                shot.quantize(256, dither=Image.Dither.NONE).save(out, optimize=True)
            finally:
                browser.close()
    finally:
        app.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("RMBG_MODEL"))
    parser.add_argument("--photo", default="astronaut", help="bundled photo (stem)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out-dir", type=Path, default=HERE / "images")
    args = parser.parse_args(argv)

    photo = next(p for p in bundled_photos() if p.stem == args.photo)
    remover = BackgroundRemover(args.model)
    remover.warmup()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    result = remover.cutout_and_mask(
        photo
    )  # also warms the engine: the page shows steady stage times
    figure = compare(photo, result.mask, result.cutout)
    figure.savefig(args.out_dir / "compare.jpg", dpi=80, pil_kwargs={"quality": 85})

    screenshot(remover, photo, args.out_dir / "demo.png", args.chromium)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
