"""rmbg.plot.compare: the notebook's three-panel figure, rendered with Agg and checked by pixel."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from rmbg.errors import InvalidImageError
from rmbg.plot import CHECKER_COLORS, TITLES, checkerboard, compare, preview
from rmbg.testing import fake_remover

from .helpers import load_photo


def _render(fig) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _panel_pixels(fig, rendered: np.ndarray, index: int) -> np.ndarray:
    """The rendered pixels inside axes ``index`` (image rows top-down), a 2-pixel border dropped."""
    box = fig.axes[index].get_window_extent()
    height = rendered.shape[0]
    y0, y1 = int(np.ceil(height - box.y1)) + 2, int(np.floor(height - box.y0)) - 2
    x0, x1 = int(np.ceil(box.x0)) + 2, int(np.floor(box.x1)) - 2
    return rendered[y0:y1, x0:x1]


def _cutout_with_hole(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A photo, its mask and an RGBA cutout whose left half is fully transparent."""
    h, w = shape
    photo = np.zeros((h, w, 3), np.uint8)
    photo[..., 0] = 200
    photo[..., 2] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    mask = np.zeros((h, w), np.uint8)
    mask[:, w // 2 :] = 255
    cutout = np.dstack([photo, mask])
    return photo, mask, cutout


@pytest.mark.parametrize(
    ("shape", "wide"), [((120, 300), True), ((300, 120), False), ((200, 200), False)]
)
def test_layout_follows_the_photo_shape_with_titles_and_no_ticks(shape, wide):
    fig = compare(*_cutout_with_hole(shape))
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == list(TITLES)
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    _render(fig)  # positions settle once the layout engine has run
    boxes = [ax.get_position() for ax in fig.axes]
    if wide:  # stacked: one column, top to bottom
        assert boxes[0].y0 > boxes[1].y0 > boxes[2].y0
        assert all(abs(b.x0 - boxes[0].x0) < 0.02 for b in boxes)
        assert fig.get_figheight() > fig.get_figwidth()
    else:  # side by side: one row, left to right
        assert boxes[0].x0 < boxes[1].x0 < boxes[2].x0
        assert all(abs(b.y0 - boxes[0].y0) < 0.02 for b in boxes)
        assert fig.get_figwidth() > fig.get_figheight()


def test_checkerboard_shows_where_alpha_is_zero_and_colours_where_it_is_opaque():
    fig = compare(*_cutout_with_hole((160, 320)))
    rendered = _render(fig)
    panel = _panel_pixels(fig, rendered, 2).astype(int)
    w = panel.shape[1]
    transparent = panel[:, : w // 2 - 4].reshape(-1, 3)
    opaque = panel[:, w // 2 + 4 :].reshape(-1, 3)
    # both checker greys are visible in the transparent half, and nothing else is (pixels on
    # a square's edge are resampled to a grey between the two)
    near = [np.abs(transparent - np.array(c)).max(axis=1) <= 6 for c in CHECKER_COLORS]
    assert near[0].mean() > 0.3 and near[1].mean() > 0.3
    neutral = np.ptp(transparent, axis=1) <= 3
    lo, hi = CHECKER_COLORS[0][0] - 6, CHECKER_COLORS[1][0]
    assert (neutral & (transparent[:, 0] >= lo) & (transparent[:, 0] <= hi)).all()
    # the opaque half is the photo's colour (red 200, no checker grey)
    assert np.abs(opaque[:, 0] - 200).max() <= 3
    assert not (np.abs(opaque - np.array(CHECKER_COLORS[1])).max(axis=1) <= 6).any()
    # the mask panel is black on the left, white on the right
    mask_panel = _panel_pixels(fig, rendered, 1)
    mw = mask_panel.shape[1]
    assert mask_panel[:, : mw // 2 - 4].max() <= 3
    assert mask_panel[:, mw // 2 + 4 :].min() >= 252


def test_checkerboard_pattern():
    board = checkerboard(8, 12, square=4)
    assert tuple(board[0, 0]) == CHECKER_COLORS[0]
    assert tuple(board[0, 4]) == CHECKER_COLORS[1]
    assert tuple(board[4, 0]) == CHECKER_COLORS[1]
    assert tuple(board[4, 4]) == CHECKER_COLORS[0]


def test_takes_what_the_library_returns_and_saves_a_png(tmp_path):
    remover = fake_remover()
    path = tmp_path / "chelsea.png"
    Image.fromarray(load_photo("chelsea")).save(path)
    result = remover.cutout_and_mask(path)  # PIL images: mask "L", cutout "RGBA"
    fig = compare(path, result.mask, result.cutout)
    out = tmp_path / "figure.png"
    fig.savefig(out)
    with Image.open(out) as saved:
        assert saved.format == "PNG" and saved.width > 100
    png = remover.cutout_and_mask(path, output="png")
    compare(path.read_bytes(), png.mask, png.cutout)


def test_bad_inputs_say_what_is_wrong():
    photo, mask, cutout = _cutout_with_hole((50, 80))
    with pytest.raises(InvalidImageError, match="mask is 40x50 but the photo is 80x50"):
        compare(photo, mask[:, :40], cutout)
    with pytest.raises(InvalidImageError, match="cutout cannot be read"):
        compare(photo, mask, io.BytesIO(b"not an image").getvalue())
    with pytest.raises(InvalidImageError, match="HxW, HxWx3 or HxWx4 uint8"):
        compare(photo.astype(np.float32), mask, cutout)


def test_preview_is_compare_of_one_cutout_and_mask_run(tmp_path):
    remover = fake_remover()
    rgba = np.dstack([load_photo("coffee"), np.full(load_photo("coffee").shape[:2], 255, np.uint8)])
    rgba[:30] = 0
    path = tmp_path / "cup.png"
    Image.fromarray(rgba, "RGBA").save(path)
    calls = remover.engine().calls
    fig = preview(remover, path)
    assert remover.engine().calls == calls + 1
    expected = compare(
        rgba, remover.mask(path, output="array"), remover.cutout(path, output="array")
    )
    np.testing.assert_array_equal(_render(fig), _render(expected))
