"""The browser demo, driven for real: Gradio on 127.0.0.1, headless Chromium through Playwright.

The app runs the fake backend: what is tested here is the demo's plumbing (upload -> options ->
facade -> PNG download), and the fake network makes that deterministic and fast; the stand-in
would add ~1 s per request and a 35 s conversion without testing anything more of the demo
(``docs/make_demo_screenshot.py`` drives the same page on the stand-in for the documentation).

Chromium is Debian's (``/usr/bin/chromium``): Playwright's own browser download is not reachable
from the project's machines. ``nox -s tests`` installs it with apt when it is missing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rmbg.compose import combined_alpha
from rmbg.demo import run_demo
from rmbg.testing import fake_remover

from .helpers import load_photo

CHROMIUM = os.environ.get("RMBG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def remover():
    return fake_remover()


@pytest.fixture(scope="module")
def demo_url(remover) -> Iterator[str]:
    """The demo on a free localhost port (127.0.0.1), in a server thread of this process;
    always stopped."""
    port = _free_port()
    app = run_demo(remover, port=port, block=False)  # what `rmbg demo` runs, in a thread
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"No Chromium at {CHROMIUM}: `apt-get install -y chromium` (nox -s tests does it), "
            "or point RMBG_CHROMIUM at a Chromium binary."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, demo_url):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(demo_url)
    page.locator("#rmbg-photo").wait_for()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def transparent_photo(tmp_path) -> Path:
    """A PNG photo with its own transparency: a clear top band and a half-transparent block."""
    rgb = np.asarray(Image.fromarray(load_photo("coffee")).resize((320, 240)))
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:40] = 0
    alpha[150:, 200:] = 128
    path = tmp_path / "cup.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    return path


def _upload(page, path: Path) -> None:
    page.locator("#rmbg-photo input[type=file]").set_input_files(str(path))
    # the upload is done when the photo is shown (a file that is not an image shows no picture,
    # so wait for the upload request instead of the picture)
    page.wait_for_load_state("networkidle")


_RESULT_STATE = """() => {
    const last = sel => [...document.querySelectorAll(sel)].filter(i => i.complete).pop()?.src ?? '';
    return [document.querySelector('#rmbg-timings')?.innerText ?? '',
            last('#rmbg-slider img'), last('#rmbg-mask img')];
}"""


def _run_and_wait(page) -> None:
    """Click "Remove background" and wait until the outputs show the new result: the stage times
    (text) change first, the file outputs (slider, mask, download) a moment later, so wait for
    the new cutout's picture too (clicking download before that can fetch the previous file)."""
    before = page.evaluate(_RESULT_STATE)
    page.locator("#rmbg-run").click()
    page.wait_for_function(
        """([state, old]) => {
            const now = eval(state)();
            // the cutout differs from the previous one in these tests; the mask may not
            return now[0].includes('in all') && !document.body.innerText.includes('processing')
                && now[0] !== old[0] && now[1] && now[1] !== old[1] && now[2];
        }""",
        arg=[_RESULT_STATE, before],
    )
    page.wait_for_load_state("networkidle")


def _download(page, tmp_path: Path, name: str) -> Image.Image:
    with page.expect_download() as info:
        page.locator("#rmbg-download").click()
    target = tmp_path / name
    info.value.save_as(target)
    image = Image.open(target)
    image.load()
    return image


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("RMBG_DEMO_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_cutout_downloads_as_rgba_png_with_the_librarys_alpha(
    page, remover, transparent_photo, tmp_path
):
    _upload(page, transparent_photo)

    # an opaque colour first: the download is the library's RGB composite
    page.get_by_label("colour", exact=True).check()
    _run_and_wait(page)
    over_white = _download(page, tmp_path, "white.png")
    assert (over_white.format, over_white.mode) == ("PNG", "RGB")
    expected = remover.cutout(transparent_photo, background="#ffffff", output="array")
    np.testing.assert_array_equal(np.asarray(over_white), expected)

    # then transparent: an RGBA PNG whose alpha is the library's mask, combined with the
    # photo's own transparency, for the same options
    page.get_by_label("transparent", exact=True).check()
    _run_and_wait(page)
    cutout = _download(page, tmp_path, "cutout.png")
    _screenshot(page, "demo-test.png")
    assert (cutout.format, cutout.mode) == ("PNG", "RGBA")
    assert cutout.size == (320, 240)
    photo_alpha = np.asarray(Image.open(transparent_photo))[..., 3]
    mask = remover.mask(transparent_photo, output="array")
    alpha = np.asarray(cutout)[..., 3]
    np.testing.assert_array_equal(alpha, combined_alpha(mask, photo_alpha))
    assert (alpha[:40] == 0).all()  # the photo's clear band stayed clear
    np.testing.assert_array_equal(
        np.asarray(cutout), remover.cutout(transparent_photo, output="array")
    )


def test_a_broken_upload_shows_the_librarys_message_and_the_app_keeps_serving(
    page, remover, transparent_photo, tmp_path
):
    fake = tmp_path / "notes.png"
    fake.write_text("these are not the pixels you are looking for\n")
    _upload(page, fake)
    page.locator("#rmbg-run").click()
    error = page.get_by_text("not an image, or in a format Pillow cannot read")
    error.first.wait_for()
    text = error.first.inner_text()
    assert "notes.png" in text and "/tmp" not in text  # the user's name, not a server path
    assert "Traceback" not in page.content()
    _screenshot(page, "demo-error.png")

    # the next request is served
    page.locator("#rmbg-photo button[aria-label='Remove Image']").first.click()
    _upload(page, transparent_photo)
    _run_and_wait(page)
    cutout = _download(page, tmp_path, "after-error.png")
    assert cutout.mode == "RGBA"
    np.testing.assert_array_equal(
        np.asarray(cutout), remover.cutout(transparent_photo, output="array")
    )


# -- the handler without a browser: the library's messages for inputs a page cannot send --------
@pytest.fixture
def handler(remover, tmp_path):
    import gradio as gr

    from rmbg.demo import _handler, _Removers, _Results

    run = _handler(_Removers(remover, None), _Results())
    defaults = {
        "precision": "auto", "device": "cpu", "background": "transparent", "colour": "#ffffff",
        "background_image": None, "hard": False, "threshold": 0.5, "feather": 0.0, "grow": 0,
        "invert": False, "refine_foreground": False, "trim": False, "margin": 0,
    }  # fmt: skip

    def call(image, **changes):
        return run(image, **{**defaults, **changes})

    return call, gr.Error


def test_handler_reports_library_errors_as_gradio_errors(handler, remover, tmp_path):
    call, error = handler
    photo = tmp_path / "cup.png"
    Image.fromarray(load_photo("coffee")).save(photo)
    with pytest.raises(error, match="feather"):
        call({"path": str(photo), "orig_name": "cup.png"}, feather=-1.0)
    with pytest.raises(error, match="margin"):
        call({"path": str(photo), "orig_name": "cup.png"}, trim=True, margin=-3)
    with pytest.raises(error, match="background image"):
        call({"path": str(photo), "orig_name": "cup.png"}, background="image")
    with pytest.raises(error, match="precision"):
        call({"path": str(photo), "orig_name": "cup.png"}, precision="bf16")
    with pytest.raises(error, match="Upload, paste or drop"):
        call(None)


def test_handler_refuses_a_decompression_bomb_with_the_librarys_message(tmp_path):
    import gradio as gr

    from rmbg.demo import _handler, _Removers, _Results

    small = fake_remover(max_pixels=10_000)
    run = _handler(_Removers(small, None), _Results())
    photo = tmp_path / "big.png"
    Image.new("RGB", (200, 200)).save(photo)
    with pytest.raises(gr.Error, match="pixels"):
        run(
            {"path": str(photo), "orig_name": "big.png"}, "auto", "cpu", "transparent", None,
            None, False, 0.5, 0.0, 0, False, False, False, None,
        )  # fmt: skip


def test_handler_results_are_the_librarys_pngs(handler, remover, tmp_path):
    call, _ = handler
    photo = tmp_path / "cup.png"
    Image.fromarray(load_photo("chelsea")).save(photo)
    (before, after), mask, download, timings = call(
        {"path": str(photo), "orig_name": "My cup.png"}, hard=True, threshold=0.4, grow=2
    )
    assert before == str(photo) and after == download
    assert Path(download).name == "My_cup.cutout.png"
    expected = remover.cutout_and_mask(photo, threshold=0.4, grow=2, output="png")
    assert Path(download).read_bytes() == expected.cutout
    assert Path(mask).read_bytes() == expected.mask
    assert "| network |" in timings and "in all" in timings


def test_one_remover_per_precision_made_once_and_shared(remover):
    from rmbg.demo import _Removers

    made = []

    def make(precision):
        made.append(precision)
        return fake_remover(precision=precision)

    removers = _Removers(remover, make)
    assert removers.get(remover.precision) is remover  # the one given is used as it is
    f32 = removers.get("f32")
    assert removers.get("f32") is f32 and made == ["f32"]
