"""``rmbg cutout --preview FILE``: the original / mask / cutout figure of the first input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from rmbg.options import CutoutOptions
from rmbg.plot import preview
from rmbg.testing import fake_remover

from .test_cli import env, err, fake, make_image, run  # noqa: F401  (fixtures)


def test_preview_saves_the_figure_of_the_first_input_cut_out(tmp_path, env, fake):  # noqa: F811
    bad = tmp_path / "in" / "a-broken.jpg"
    bad.parent.mkdir()
    bad.write_text("not a JPEG\n")
    photo = make_image(tmp_path / "in" / "b.png", (96, 48))
    make_image(tmp_path / "in" / "c.png", (40, 60), seed=4)
    figure = tmp_path / "preview.png"
    proc = run(
        "cutout", str(tmp_path / "in"), "--out-dir", str(tmp_path / "out"),
        "--background", "white", "--preview", str(figure), *fake, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, err(proc)  # the broken file fails; the others are written
    assert (tmp_path / "out" / "b.png").is_file() and (tmp_path / "out" / "c.png").is_file()
    # the figure of b.png (a-broken.jpg was not cut out), as rmbg.plot.preview draws it
    expected = io.BytesIO()
    preview(fake_remover(), photo, CutoutOptions(background="white")).savefig(
        expected, format="png"
    )
    saved = np.asarray(Image.open(figure))
    np.testing.assert_array_equal(saved, np.asarray(Image.open(expected)))
    assert saved.shape[0] > saved.shape[1]  # a wide photo: the panels are stacked


def test_preview_is_a_cutout_flag_only(tmp_path, env, fake):  # noqa: F811
    photo = make_image(tmp_path / "a.png")
    proc = run(
        "mask", str(photo), "--preview", str(tmp_path / "p.png"), *fake, env=env, cwd=tmp_path
    )
    assert proc.returncode == 2 and "--preview" in err(proc)
    assert not Path(tmp_path / "p.png").exists()
