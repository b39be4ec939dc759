"""Typed options: validated once, the same for every frontend, and equal to the keyword spelling."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rmbg.io
from rmbg.errors import InvalidImageError, UnsupportedOptionError
from rmbg.options import (
    DEFAULT_TRIM_THRESHOLD,
    BackgroundImage,
    CutoutKeywords,
    CutoutOptions,
    MaskKeywords,
    MaskOptions,
)
from rmbg.testing import fake_remover


@pytest.fixture(scope="module")
def remover():
    return fake_remover()


@pytest.fixture
def photo():
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)


def test_keywords_mirror_the_dataclasses():
    """The TypedDicts behind ``**keywords`` name exactly the dataclass fields (one list of options)."""
    for options, keywords in ((MaskOptions, MaskKeywords), (CutoutOptions, CutoutKeywords)):
        assert set(typing.get_type_hints(keywords)) == {f.name for f in dataclasses.fields(options)}


def test_defaults():
    opts = CutoutOptions()
    assert (opts.normalize, opts.threshold, opts.feather, opts.grow) == ("minmax", None, 0.0, 0)
    assert (opts.invert, opts.exif_transpose, opts.trim, opts.refine_foreground) == (
        False,
        True,
        False,
        False,
    )
    assert opts.trim_margin == 0 and opts.trim_level == DEFAULT_TRIM_THRESHOLD
    assert opts.backdrop is None and not opts.opaque


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"threshold": 1.5}, "threshold must be a number in \\[0, 1\\]"),
        ({"threshold": float("nan")}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"feather": -1}, "feather must be a number >= 0"),
        ({"feather": "2"}, "feather"),
        ({"grow": 1.5}, "grow must be a whole number"),
        ({"invert": "yes"}, "invert must be True or False"),
        ({"normalize": "max"}, "normalize must be one of: minmax, none"),
        ({"trim": True, "margin": -1}, "margin must be a whole number of pixels >= 0"),
        ({"trim": True, "trim_threshold": 0}, "trim_threshold must be a whole number in 1..255"),
        ({"trim": True, "trim_threshold": 256}, "1..255"),
        ({"margin": 3}, "need trim=True"),
        ({"trim_threshold": 10}, "need trim=True"),
        ({"background": "not-a-colour"}, "is not a colour"),
        ({"background": 5}, "background must be None, a colour or an image"),
        ({"colour": "red"}, "Unknown cutout option\\(s\\): colour. Known: normalize, "),
    ],
)
def test_bad_values_fail_with_the_same_message_everywhere(values, message, remover, tmp_path):
    """The options, the keyword spelling, batches and text fields all give the same message."""
    with pytest.raises(UnsupportedOptionError, match=message):
        CutoutOptions.build(**values)
    missing = tmp_path / "never-read.jpg"  # the option fails before the image is looked at
    with pytest.raises(UnsupportedOptionError, match=message):
        remover.cutout(missing, **values)
    with pytest.raises(UnsupportedOptionError, match=message):
        remover.cutouts([missing], **values)
    as_text = {k: str(v) for k, v in values.items()}
    if as_text not in ({"feather": "2"}, {"grow": "1.5"}, {"invert": "yes"}, {"background": "5"}):
        with pytest.raises(UnsupportedOptionError, match=message):
            CutoutOptions.from_strings(as_text)


def test_unknown_mask_option_lists_the_known_ones(remover, photo):
    with pytest.raises(UnsupportedOptionError, match="Unknown mask option\\(s\\): background"):
        remover.mask(photo, background="white")
    with pytest.raises(UnsupportedOptionError, match="Known: normalize, threshold, feather"):
        MaskOptions().replace(feathr=2)


def test_options_and_keywords_give_the_same_result(remover, photo):
    opts = CutoutOptions(threshold=0.4, grow=2, feather=1.0, background="#00ff0080", trim=True)
    by_options = remover.cutout(photo, opts)
    by_keywords = remover.cutout(
        photo, threshold=0.4, grow=2, feather=1.0, background="#00ff0080", trim=True
    )
    np.testing.assert_array_equal(by_options, by_keywords)
    # keywords apply on top of options
    np.testing.assert_array_equal(
        remover.cutout(photo, opts, grow=0), remover.cutout(photo, opts.replace(grow=0))
    )
    assert not np.array_equal(remover.cutout(photo, opts, grow=0), by_options)
    mask_opts = MaskOptions(invert=True, threshold=0.5)
    np.testing.assert_array_equal(
        remover.mask(photo, mask_opts), remover.mask(photo, invert=True, threshold=0.5)
    )
    # mask options given to cutout keep their values, cutout defaults for the rest
    np.testing.assert_array_equal(
        remover.cutout(photo, mask_opts), remover.cutout(photo, invert=True, threshold=0.5)
    )


def test_options_are_immutable_and_typed_once():
    opts = CutoutOptions(feather=2, threshold=1, background=(255, 255, 255))
    assert isinstance(opts.feather, float) and opts.feather == 2.0
    assert isinstance(opts.threshold, float)
    assert opts.background == (255, 255, 255, 255) and opts.opaque
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.grow = 3  # type: ignore[misc]
    assert opts.replace(grow=3).grow == 3 and opts.grow == 0
    assert not CutoutOptions(background="#ffffff80").opaque


def test_from_strings_parses_each_field_by_its_type():
    opts = CutoutOptions.from_strings(
        {
            "threshold": "0.5",
            "feather": "1.5",
            "grow": "-2",
            "invert": "true",
            "exif_transpose": "0",
            "normalize": "none",
            "background": "white",
            "trim": "yes",
            "margin": "4",
            "trim_threshold": "",
            "refine_foreground": "on",
        }
    )
    assert opts == CutoutOptions(
        threshold=0.5,
        feather=1.5,
        grow=-2,
        invert=True,
        exif_transpose=False,
        normalize="none",
        background="white",
        trim=True,
        margin=4,
        refine_foreground=True,
    )
    assert CutoutOptions.from_strings({"threshold": "none", "background": ""}) == CutoutOptions()
    with pytest.raises(UnsupportedOptionError, match="invert='maybe' is not true or false"):
        CutoutOptions.from_strings({"invert": "maybe"})
    with pytest.raises(UnsupportedOptionError, match=r"grow='1\.5' is not a whole number"):
        CutoutOptions.from_strings({"grow": "1.5"})


def test_background_image_is_decoded_once_per_batch(remover, photo, tmp_path, monkeypatch):
    path = tmp_path / "backdrop.png"
    Image.fromarray(np.full((8, 8, 3), (10, 200, 30), np.uint8)).save(path)
    reads: list[object] = []
    real = rmbg.io.load_image

    def spy(image, *args, **kwargs):
        reads.append(image)
        return real(image, *args, **kwargs)

    monkeypatch.setattr(rmbg.io, "load_image", spy)
    results = list(remover.cutouts([photo] * 5, background=path))
    assert sum(1 for r in reads if isinstance(r, Path)) == 1
    assert all(r.shape == (*photo.shape[:2], 3) for r in results)
    opts = CutoutOptions(background=path)
    assert isinstance(opts.backdrop, BackgroundImage) and opts.opaque
    reads.clear()
    for _ in range(3):
        remover.cutout(photo, opts)
    assert not any(isinstance(r, Path) for r in reads)


def test_background_image_kinds(photo, tmp_path):
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[..., 3] = 100
    path = tmp_path / "bg.png"
    Image.fromarray(rgba).save(path)
    for bg in (path, path.read_bytes(), Image.open(path), rgba):
        opts = CutoutOptions(background=bg)
        assert isinstance(opts.backdrop, BackgroundImage) and not opts.opaque
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(InvalidImageError):
        CutoutOptions(background=bad)
