"""Images in and out through the facade, on the fake backend: every input type with the output type
it must return, EXIF orientation, every option together, bad inputs, and the caller's objects."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from rmbg import compose as C
from rmbg import decontaminate as D
from rmbg.errors import ImageTooLargeError, InvalidImageError, UnsupportedOptionError
from rmbg.options import resolve_background
from rmbg.postprocess import postprocess
from rmbg.preprocess import preprocess
from rmbg.testing import fake_remover

from .helpers import load_photo, visible

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def remover():
    return fake_remover()


@pytest.fixture
def photo() -> np.ndarray:
    return load_photo("chelsea")  # 300x451 RGB


@pytest.fixture
def photo_file(tmp_path: Path, photo: np.ndarray) -> Path:
    path = tmp_path / "chelsea.png"  # lossless: every input kind decodes to the same pixels
    Image.fromarray(photo).save(path)
    return path


def expected_mask(remover, rgb: np.ndarray, normalize: str = "minmax") -> np.ndarray:
    """The engine's output through the shared post-processing, computed here step by step."""
    raw = remover.engine()(preprocess(rgb, remover.spec))
    return postprocess(raw, rgb.shape[:2], normalize=normalize)


def decode_png(data: bytes) -> Image.Image:
    assert isinstance(data, bytes) and data.startswith(PNG_SIGNATURE)
    im = Image.open(io.BytesIO(data))
    assert im.format == "PNG"
    return im


def as_array(result) -> np.ndarray:
    if isinstance(result, bytes):
        return np.asarray(decode_png(result))
    if isinstance(result, Image.Image):
        return np.asarray(result)
    return result


# -- every input type, the output type it must return ----------------------------------------------
INPUT_KINDS = [
    "str",
    "path",
    "bytes",
    "bytearray",
    "memoryview",
    "file",
    "bytesio",
    "pil",
    "ndarray",
]


def make_input(kind: str, path: Path, rgb: np.ndarray, stack: list):
    data = path.read_bytes()
    if kind == "str":
        return str(path)
    if kind == "path":
        return path
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)
    if kind == "file":
        fh = open(path, "rb")  # noqa: SIM115 -- closed by the test, after checking it is still open
        stack.append(fh)
        return fh
    if kind == "bytesio":
        return io.BytesIO(data)
    if kind == "pil":
        return Image.fromarray(rgb)
    return rgb.copy()


# what each kind must get back: PIL for paths, files and PIL images, PNG bytes for bytes-likes
RETURNS = {
    "str": Image.Image,
    "path": Image.Image,
    "bytes": bytes,
    "bytearray": bytes,
    "memoryview": bytes,
    "file": Image.Image,
    "bytesio": Image.Image,
    "pil": Image.Image,
    "ndarray": np.ndarray,
}


@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_mask_returns_the_input_kind_with_the_same_pixels(remover, photo, photo_file, kind):
    files: list = []
    result = remover.mask(make_input(kind, photo_file, photo, files))
    assert type(result) is RETURNS[kind] or isinstance(result, RETURNS[kind])
    if isinstance(result, Image.Image):
        assert (result.mode, result.size) == ("L", (451, 300))
    elif isinstance(result, bytes):
        im = decode_png(result)
        assert (im.mode, im.size) == ("L", (451, 300))
    else:
        assert (result.shape, result.dtype) == ((300, 451), np.uint8)
    np.testing.assert_array_equal(as_array(result), expected_mask(remover, photo))
    for fh in files:
        assert not fh.closed  # a caller's file is never closed
        fh.close()


@pytest.mark.parametrize("kind", INPUT_KINDS)
@pytest.mark.parametrize(
    ("background", "mode", "channels"),
    [(None, "RGBA", 4), ("#00ff0080", "RGBA", 4), ("white", "RGB", 3)],
    ids=["transparent", "translucent", "opaque"],
)
def test_cutout_returns_the_input_kind(
    remover, photo, photo_file, kind, background, mode, channels
):
    files: list = []
    result = remover.cutout(make_input(kind, photo_file, photo, files), background=background)
    assert isinstance(result, RETURNS[kind])
    if isinstance(result, Image.Image):
        assert (result.mode, result.size) == (mode, (451, 300))
    elif isinstance(result, bytes):
        im = decode_png(result)
        assert (im.mode, im.size) == (mode, (451, 300))
    else:
        assert (result.shape, result.dtype) == ((300, 451, channels), np.uint8)
    mask = expected_mask(remover, photo)
    np.testing.assert_array_equal(as_array(result), C.compose(photo, mask, background=background))
    for fh in files:
        fh.close()


def test_transparent_cutout_is_the_photo_plus_the_mask(remover, photo):
    cut = remover.cutout(photo)
    np.testing.assert_array_equal(cut[..., :3], visible(photo, cut[..., 3]))
    np.testing.assert_array_equal(cut[..., 3], remover.mask(photo))


def test_array_results_are_fresh_writeable_arrays(remover, photo):
    for result in (remover.mask(photo), remover.cutout(photo), remover.cutout(photo, trim=True)):
        assert result.flags.c_contiguous and result.flags.writeable and result.flags.owndata
        assert not np.shares_memory(result, photo)


def test_bytes_results_are_lossless_png_carrying_the_icc_profile(remover, photo):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG", icc_profile=icc)
    cut = decode_png(remover.cutout(buf.getvalue()))
    assert cut.info.get("icc_profile") == icc  # colour results keep the input's colour space
    rgba = np.asarray(cut)
    np.testing.assert_array_equal(rgba[..., :3], visible(photo, rgba[..., 3]))
    assert "icc_profile" not in decode_png(remover.mask(buf.getvalue())).info  # a mask is no colour
    pil = Image.open(io.BytesIO(buf.getvalue()))
    assert remover.cutout(pil).info.get("icc_profile") == icc


def test_grey_16_bit_and_float_inputs(remover, photo):
    grey = photo[..., 1]
    np.testing.assert_array_equal(
        remover.mask(grey), expected_mask(remover, np.repeat(grey[..., None], 3, axis=2))
    )
    wide = photo.astype(np.uint16) * 257  # x >> 8 gives the photo back
    np.testing.assert_array_equal(remover.mask(wide), remover.mask(photo))
    unit = photo / 255.0  # rint(x * 255) gives the photo back
    np.testing.assert_array_equal(remover.mask(unit), remover.mask(photo))
    cut = remover.cutout(Image.fromarray(grey))
    assert cut.mode == "RGBA"
    rgba = np.asarray(cut)
    np.testing.assert_array_equal(rgba[..., 0], visible(grey[..., None], rgba[..., 3])[..., 0])


def test_input_alpha_is_flattened_for_the_network_and_kept_in_the_cutout(remover, photo):
    alpha = np.zeros(photo.shape[:2], np.uint8)
    alpha[:, 100:] = 255
    alpha[:, 100:150] = 128
    rgba = np.dstack([photo, alpha])
    flat = np.where(alpha[..., None] == 0, 255, photo).astype(np.uint8)
    half = alpha == 128
    flat[half] = (photo[half].astype(int) * 128 + 255 * 127 + 127) // 255
    mask = expected_mask(remover, flat)  # the network saw the image over white
    np.testing.assert_array_equal(remover.mask(rgba), mask)
    cut = remover.cutout(rgba)
    # the straight colours, not the flattened ones (cleared where fully transparent)
    np.testing.assert_array_equal(cut[..., :3], visible(photo, cut[..., 3]))
    np.testing.assert_array_equal(cut[..., 3], C.combined_alpha(mask, alpha))
    assert (cut[:, :100, 3] == 0).all()  # transparent stays transparent whatever the mask says
    pil = remover.cutout(Image.fromarray(rgba, "RGBA"))
    np.testing.assert_array_equal(np.asarray(pil), cut)


# -- EXIF orientation ------------------------------------------------------------------------------
def phone_jpeg(displayed: np.ndarray, orientation: int) -> bytes:
    """A JPEG stored the way a camera held at an angle writes it: pixels in sensor order plus the
    EXIF orientation that makes viewers display ``displayed``."""
    undo = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,  # stored turned left; displayed turned right
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }
    stored = Image.fromarray(displayed).transpose(undo[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", range(2, 9))
def test_exif_rotated_jpeg_mask_is_aligned_with_the_displayed_image(
    remover, photo, tmp_path, orientation
):
    data = phone_jpeg(photo, orientation)
    path = tmp_path / "phone.jpg"
    path.write_bytes(data)
    with Image.open(path) as im:
        assert im.size == ((300, 451) if orientation >= 5 else (451, 300))  # as stored
        displayed = np.asarray(ImageOps.exif_transpose(im))  # what viewers show
    assert displayed.shape == photo.shape
    expected = expected_mask(remover, displayed)  # the mask of the pre-rotated image
    for image in (path, str(path), data, Image.open(path), io.BytesIO(data)):
        np.testing.assert_array_equal(as_array(remover.mask(image)), expected)
    cut = as_array(remover.cutout(path))
    assert cut.shape == (300, 451, 4)
    np.testing.assert_array_equal(cut[..., :3], visible(displayed, expected))
    np.testing.assert_array_equal(cut[..., 3], expected)
    # aligned with the photo itself (JPEG only blurs it a little), not with a turned copy
    assert np.abs(expected.astype(int) - expected_mask(remover, photo)).mean() < 2
    # opting out gives the stored orientation
    raw = remover.mask(path, exif_transpose=False)
    with Image.open(path) as im:
        assert raw.size == im.size


def test_exif_orientation_of_a_caller_pil_image_is_applied_not_changed(remover, photo):
    im = Image.open(io.BytesIO(phone_jpeg(photo, 6)))
    before = (im.size, im.tobytes(), im.getexif().get(0x0112))
    mask = remover.mask(im)
    assert mask.size == (451, 300)
    assert (im.size, im.tobytes(), im.getexif().get(0x0112)) == before
    assert "exif" not in mask.info  # results carry no orientation to apply twice


# -- every option at once --------------------------------------------------------------------------
def test_mask_options_are_shape_mask_of_the_mask(remover, photo):
    base = expected_mask(remover, photo)
    options = {"threshold": 0.5, "grow": 2, "feather": 1.5, "invert": True}
    np.testing.assert_array_equal(remover.mask(photo, **options), C.shape_mask(base, **options))
    np.testing.assert_array_equal(remover.mask(photo, grow=-3), C.shape_mask(base, grow=-3))
    np.testing.assert_array_equal(remover.mask(photo, threshold=0.5), np.where(base >= 128, 255, 0))
    np.testing.assert_array_equal(remover.mask(photo, invert=True), 255 - base)


def test_normalize_none_keeps_the_probabilities(remover, photo):
    raw = remover.engine()(preprocess(photo, remover.spec))
    probs = remover.mask(photo, normalize="none")
    np.testing.assert_array_equal(probs, postprocess(raw, photo.shape[:2], normalize="none"))
    stretched = remover.mask(photo)
    assert (int(stretched.min()), int(stretched.max())) == (0, 255)
    assert probs.min() > 0 and probs.max() < 255  # the fake network never reaches 0 or 1
    cut = remover.cutout(photo, normalize="none")
    np.testing.assert_array_equal(cut[..., 3], probs)


def test_every_cutout_option_composes(remover, photo):
    out = remover.cutout(
        photo,
        background="white",
        trim=True,
        margin=4,
        threshold=0.5,
        grow=2,
        feather=1.5,
        refine_foreground=True,
    )
    mask = C.shape_mask(expected_mask(remover, photo), threshold=0.5, grow=2, feather=1.5)
    full = C.compose(photo, mask, background="white", refine_foreground=True)
    box = C.trim_box(mask, margin=4)
    assert box is not None
    x0, y0, x1, y1 = box
    assert out.shape == (y1 - y0, x1 - x0, 3)  # RGB: white is opaque
    np.testing.assert_array_equal(out, full[y0:y1, x0:x1])
    # the box is the subject's (alpha >= 8) plus 4 pixels, clipped to the photo
    subject = np.argwhere(mask >= C.DEFAULT_TRIM_THRESHOLD)
    top, left = subject.min(axis=0)
    bottom, right = subject.max(axis=0)
    assert box == (
        max(left - 4, 0),
        max(top - 4, 0),
        min(right + 5, photo.shape[1]),
        min(bottom + 5, photo.shape[0]),
    )


def test_cutout_over_an_image_with_inversion_and_trim_threshold(remover, photo, tmp_path):
    backdrop = load_photo("coffee")
    path = tmp_path / "backdrop.png"
    Image.fromarray(backdrop).save(path)
    out = remover.cutout(photo, background=path, invert=True, trim=True, trim_threshold=200)
    mask = C.shape_mask(expected_mask(remover, photo), invert=True)
    full = C.compose(photo, mask, background=resolve_background(path))
    x0, y0, x1, y1 = C.trim_box(mask, threshold=200)
    np.testing.assert_array_equal(out, full[y0:y1, x0:x1])
    # the backdrop is fitted (scaled to cover, centre-cropped) to the photo's size
    fitted = np.asarray(
        ImageOps.fit(Image.fromarray(backdrop), (451, 300), Image.Resampling.LANCZOS)
    )
    clear = mask == 0
    np.testing.assert_array_equal(full[clear], fitted[clear])


def test_trim_of_an_empty_cutout_keeps_the_whole_image(remover, photo):
    out = remover.cutout(photo, threshold=1.0, grow=-5, trim=True)  # nothing left of the subject
    assert out.shape == (300, 451, 4)
    assert (out[..., 3] == 0).all()


def test_refine_foreground_changes_only_the_soft_pixels(remover, photo):
    plain = remover.cutout(photo)
    refined = remover.cutout(photo, refine_foreground=True)
    np.testing.assert_array_equal(refined[..., 3], plain[..., 3])
    opaque = plain[..., 3] == 255
    np.testing.assert_array_equal(refined[opaque], plain[opaque])
    mask = expected_mask(remover, photo)
    np.testing.assert_array_equal(
        refined[..., :3], visible(D.estimate_foreground(photo, mask), mask)
    )


@pytest.mark.parametrize(
    "options",
    [
        {"threshold": 1.5},
        {"threshold": "0.5"},
        {"feather": -1},
        {"grow": 1.5},
        {"margin": -1, "trim": True},
        {"trim_threshold": 0, "trim": True},
        {"background": 42},
        {"background": "not-a-colour"},
        {"background": (1, 2)},
    ],
)
def test_bad_options_raise_unsupported_option_error(remover, photo, options):
    with pytest.raises(UnsupportedOptionError):
        remover.cutout(photo, **options)


# -- bad inputs ------------------------------------------------------------------------------------
BAD_INPUTS = {
    "garbage bytes": b"this is not an image",
    "empty bytes": b"",
    "truncated png": None,  # built from the photo below
    "text stream": io.StringIO("not binary"),
    "url": "https://example.com/cat.jpg",
    "channels first": np.zeros((3, 20, 30), np.uint8),
    "4-d array": np.zeros((1, 20, 30, 3), np.uint8),
    "int32 array": np.zeros((20, 30, 3), np.int32),
    "float out of range": np.full((20, 30, 3), 2.0),
    "nan": np.full((20, 30, 3), np.nan),
    "zero size": np.zeros((0, 30, 3), np.uint8),
    "a number": 42,
    "a bytes path": b"/tmp/cat.png",
}


@pytest.mark.parametrize("method", ["mask", "cutout"])
@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_inputs_raise_invalid_image_error_before_inference(remover, photo, method, name):
    value = BAD_INPUTS[name]
    if name == "truncated png":
        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, "PNG")
        value = buf.getvalue()[:2000]
    with pytest.raises(InvalidImageError):
        getattr(remover, method)(value)
    assert remover.engine().calls == 0


def test_empty_and_missing_files(remover, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="empty"):
        remover.mask(empty)
    with pytest.raises(InvalidImageError, match="empty"):
        remover.mask(io.BytesIO())
    with pytest.raises(FileNotFoundError):
        remover.mask(tmp_path / "missing.png")
    with pytest.raises(
        (IsADirectoryError, PermissionError)
    ):  # as open() says (Windows: the latter)
        remover.mask(tmp_path)
    assert remover.engine().calls == 0


@pytest.mark.parametrize("method", ["mask", "cutout"])
def test_max_pixels_guard(photo, photo_file, method):
    small = fake_remover(max_pixels=451 * 300 - 1)
    inputs = [photo, photo_file, str(photo_file), photo_file.read_bytes(), Image.fromarray(photo)]
    for image in inputs:
        with pytest.raises(ImageTooLargeError, match="135,300 pixels"):
            getattr(small, method)(image)
        with pytest.raises(InvalidImageError):  # ImageTooLargeError is an InvalidImageError
            getattr(small, method)(image)
    assert small.engine().calls == 0
    exact = fake_remover(max_pixels=451 * 300)
    assert getattr(exact, method)(photo).shape[:2] == (300, 451)
    unlimited = fake_remover(max_pixels=None)
    assert getattr(unlimited, method)(photo).shape[:2] == (300, 451)


def test_bad_max_pixels(photo):
    with pytest.raises(UnsupportedOptionError):
        fake_remover(max_pixels=0).mask(photo)


# -- the caller's objects are never changed --------------------------------------------------------
def test_caller_array_is_never_mutated_nor_shared(remover, photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)])
    before = rgba.copy()
    rgba.flags.writeable = True
    results = [
        remover.mask(rgba, threshold=0.5, grow=2, feather=1, invert=True),
        remover.cutout(rgba),
        remover.cutout(rgba, background="black", refine_foreground=True, trim=True),
    ]
    np.testing.assert_array_equal(rgba, before)
    assert rgba.flags.writeable
    for result in results:
        assert not np.shares_memory(result, rgba)
        result[...] = 0  # writing into a result leaves the input alone
    np.testing.assert_array_equal(rgba, before)
    readonly = photo.copy()
    readonly.flags.writeable = False
    remover.cutout(readonly)  # a read-only input is fine, and stays read-only
    assert not readonly.flags.writeable


def test_caller_pil_image_bytes_and_background_are_never_mutated(remover, photo, tmp_path):
    im = Image.fromarray(np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)]), "RGBA")
    im.info["note"] = "mine"
    pixels, mode, size, info = im.tobytes(), im.mode, im.size, dict(im.info)
    data = bytearray(Image.fromarray(photo).tobytes())  # raw pixels are no image: only the type
    png = io.BytesIO()
    Image.fromarray(photo).save(png, "PNG")
    buffer = bytearray(png.getvalue())
    buffer_before = bytes(buffer)
    backdrop = load_photo("rocket").copy()
    backdrop_before = backdrop.copy()
    backdrop_im = Image.fromarray(backdrop)
    backdrop_im_bytes = backdrop_im.tobytes()

    remover.cutout(im, background=backdrop, trim=True, refine_foreground=True)
    remover.cutout(im, background=backdrop_im)
    remover.mask(buffer, feather=2)
    remover.cutout(buffer, background="red")

    assert (im.tobytes(), im.mode, im.size, im.info) == (pixels, mode, size, info)
    assert bytes(buffer) == buffer_before
    np.testing.assert_array_equal(backdrop, backdrop_before)
    assert backdrop_im.tobytes() == backdrop_im_bytes
    with pytest.raises(InvalidImageError):
        remover.mask(data)


def test_caller_file_object_is_left_open(remover, photo_file):
    with open(photo_file, "rb") as fh:
        remover.mask(fh)
        assert not fh.closed
        fh.seek(0)
        assert fh.read(8) == PNG_SIGNATURE


# -- output= ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["array", "pil", "png"])
@pytest.mark.parametrize("source", ["path", "bytes", "array", "pil"])
def test_output_kind_is_what_was_asked_whatever_the_input(remover, photo, photo_file, kind, source):
    image = {
        "path": photo_file,
        "bytes": photo_file.read_bytes(),
        "array": photo,
        "pil": Image.fromarray(photo),
    }[source]
    expected_cut = remover.cutout(photo)  # array in, array out
    for method, expected in ((remover.cutout, expected_cut), (remover.mask, expected_cut[..., 3])):
        result = method(image, output=kind)
        if kind == "array":
            assert isinstance(result, np.ndarray) and result.flags.owndata
        elif kind == "pil":
            assert isinstance(result, Image.Image)
        else:
            assert isinstance(result, bytes) and result.startswith(PNG_SIGNATURE)
            result = decode_png(result)
        np.testing.assert_array_equal(np.asarray(result), expected)


def test_output_png_carries_the_icc_profile_and_auto_mirrors_the_input(remover, photo):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    pil = Image.fromarray(photo)
    pil.info["icc_profile"] = icc
    assert decode_png(remover.cutout(pil, output="png")).info.get("icc_profile") == icc
    assert "icc_profile" not in decode_png(remover.mask(pil, output="png")).info
    assert isinstance(remover.cutout(pil, output="auto"), Image.Image)
    assert isinstance(remover.cutout(photo, output="auto"), np.ndarray)


@pytest.mark.parametrize("bad", ["jpeg", "PNG", None, 1])
def test_bad_output_kind_is_refused_before_any_work(remover, bad):
    with pytest.raises(UnsupportedOptionError, match="output must be one of 'auto', 'array'"):
        remover.cutout(b"not even an image", output=bad)  # the option is checked first
    with pytest.raises(UnsupportedOptionError, match="output must be"):
        remover.mask(b"not even an image", output=bad)


def test_batches_take_the_output_option(remover, photo, photo_file):
    results = list(remover.cutouts([photo_file, photo], output="png"))
    assert all(isinstance(r, bytes) for r in results)
    np.testing.assert_array_equal(np.asarray(decode_png(results[0])), remover.cutout(photo))
