"""Post-training INT8 quantization with NNCF, checked against f32 before it may be used.

``precision="int8"`` (OpenVINO backend) quantizes the f32 IR once and caches the result like any
other precision. The flow, run by :class:`~rmbg.backends.openvino.OpenVINOBackend` on first use::

    calibration photos (bundled + augmented, or the user's folder / images)
        -> rmbg's own pre-processing -> nncf.quantize(f32 IR)               (statistics, bias fix)
    held-out photos (disjoint from the calibration set)
        -> f32 mask and int8 mask, full pipeline at the photo's size -> IoU, mean |diff|
    every held-out photo meets the bar  -> the int8 IR is saved, the figures go in the manifest
    one does not                       -> QuantizationQualityError, nothing is cached

The bar (:data:`DEFAULT_BAR`): mask IoU >= 0.99 (masks thresholded at 128) and a mean absolute
difference <= 2 grey levels, per held-out photo. The calibration set defaults to the four bundled
photos (``rmbg/data/photos``) with deterministic augmentations (flips, crops, rescales, grey
and contrast variants); the held-out set is ``rmbg/data/photos/heldout`` (four other public-domain
photos), never used for calibration.

NNCF (``pip install "rmbg[int8]"``) is imported only here, only when a model is quantized.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .cache import sha256_file
from .errors import BackendUnavailableError, ModelError, UnsupportedOptionError
from .specs import RMBG_1_4, ModelSpec

__all__ = [
    "BUNDLED_CALIBRATION",
    "DEFAULT_BAR",
    "DEFAULT_SETTINGS",
    "HELDOUT",
    "CalibrationSet",
    "QualityBar",
    "QuantizationQualityError",
    "QuantizationReport",
    "QuantizationSettings",
    "calibration_set",
    "evaluate",
    "heldout_photos",
    "quantize",
]

logger = logging.getLogger("rmbg")

PHOTO_DIR = Path(__file__).resolve().parent / "data" / "photos"
#: Bundled calibration photos (``rmbg/data/photos/<name>.jpg``).
BUNDLED_CALIBRATION: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket")
#: Held-out photos (``rmbg/data/photos/heldout/<name>.jpg``): never used for calibration.
HELDOUT: tuple[str, ...] = ("camera", "clock", "horse", "retina")
#: Image files a calibration folder may hold.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
#: Version of the augmentation recipe (part of the cache key: a new recipe re-quantizes).
AUGMENT_VERSION = 1


class QuantizationQualityError(ModelError):
    """The quantized model misses the quality bar on the held-out photos; nothing was cached.

    Attributes:
        report: The evaluation figures that failed the bar.
    """

    def __init__(self, message: str, report: QuantizationReport) -> None:
        super().__init__(message)
        self.report = report


@dataclasses.dataclass(frozen=True)
class QualityBar:
    """What an INT8 model must achieve against f32 on every held-out photo.

    Attributes:
        min_iou: Lowest IoU of the masks thresholded at 128.
        max_mean_diff: Highest mean absolute difference, in grey levels (0..255).
    """

    min_iou: float = 0.99
    max_mean_diff: float = 2.0


@dataclasses.dataclass(frozen=True)
class QuantizationSettings:
    """How NNCF quantizes (the defaults are what rmbg's measurements support; see
    ``docs/performance.md``).

    Attributes:
        preset: ``"mixed"`` (symmetric weights, asymmetric activations: the inputs of the decoder's
            convolutions are sums and concatenations that are not centred) or ``"performance"``
            (symmetric everything).
        subset_size: Calibration samples used for the statistics (at most the set's size).
        fast_bias_correction: NNCF's fast bias correction (the full one is several times slower
            for no measured gain on this network).
        keep_head_float: Leave the first convolution (the raw image) and the mask head (the last
            convolution, before the sigmoid) in floating point.
        augment: Add the flipped, cropped, rescaled and grey variants of the bundled photos.
    """

    preset: str = "mixed"
    subset_size: int = 32
    fast_bias_correction: bool = True
    keep_head_float: bool = True
    augment: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain data (for cache keys and manifests)."""
        return dataclasses.asdict(self)


DEFAULT_BAR = QualityBar()
DEFAULT_SETTINGS = QuantizationSettings()


# -- data sets --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CalibrationSet:
    """A calibration set: named lazy image loaders and a digest of their content.

    Attributes:
        description: ``"bundled"`` or where the images came from.
        digest: sha256 of the images' content (and the augmentation recipe): part of the cache key.
        items: ``(name, load)`` pairs; ``load()`` returns an ``HxWx3`` uint8 RGB array.
    """

    description: str
    digest: str
    items: tuple[tuple[str, Callable[[], NDArray[np.uint8]]], ...]

    def __len__(self) -> int:
        return len(self.items)


def _read(path: Path) -> NDArray[np.uint8]:
    from .io import load_image

    return load_image(path).rgb


def _identity(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return rgb


def _load_variant(path: Path, label: str, seed: int) -> NDArray[np.uint8]:
    return _variant(_read(path), label, seed)


#: The augmentations of a bundled photo: what a photo collection varies in.
VARIANTS: tuple[str, ...] = ("orig", "flip", "crop70", "crop50", "up3", "grey", "dark", "bright")


def _variant(rgb: NDArray[np.uint8], label: str, seed: int) -> NDArray[np.uint8]:
    """One deterministic variant of a photo (see :data:`VARIANTS`)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    out: NDArray[np.uint8]
    if label == "orig":
        out = rgb
    elif label == "flip":
        out = rgb[:, ::-1]
    elif label.startswith("crop"):
        frac = int(label[4:]) / 100
        rng = np.random.default_rng([seed, int(label[4:])])
        ch, cw = max(1, int(h * frac)), max(1, int(w * frac))
        y = int(rng.integers(0, h - ch + 1))
        x = int(rng.integers(0, w - cw + 1))
        out = rgb[y : y + ch, x : x + cw]
    elif label == "up3":
        out = np.asarray(Image.fromarray(rgb).resize((w * 3, h * 3), Image.Resampling.BICUBIC))
    elif label == "grey":
        grey = np.asarray(Image.fromarray(rgb).convert("L"))
        out = np.repeat(grey[:, :, None], 3, axis=2)
    elif label == "dark":  # darker, more contrast
        out = (255 * (np.arange(256) / 255) ** 1.6).astype(np.uint8)[rgb]
    elif label == "bright":  # brighter, flatter, upside down
        out = (255 * (np.arange(256) / 255) ** 0.6).astype(np.uint8)[rgb[::-1]]
    else:  # pragma: no cover - VARIANTS lists every label
        raise ValueError(label)
    return np.ascontiguousarray(out)


def _bundled(augment: bool) -> CalibrationSet:
    paths = [PHOTO_DIR / f"{name}.jpg" for name in BUNDLED_CALIBRATION]
    h = hashlib.sha256(f"bundled:augment={augment}:v{AUGMENT_VERSION}".encode())
    for p in paths:
        h.update(sha256_file(p).encode())
    labels = VARIANTS if augment else ("orig",)
    items = tuple(
        (f"{p.stem}:{label}", functools.partial(_load_variant, p, label, seed))
        for label in labels  # variant-major: a subset of the first N samples sees every photo
        for seed, p in enumerate(paths)
    )
    return CalibrationSet("bundled", h.hexdigest(), items)


def _folder(folder: Path) -> CalibrationSet:
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise UnsupportedOptionError(
            f"The calibration folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})."
        )
    h = hashlib.sha256(b"folder")
    for p in files:
        h.update(p.name.encode() + b"\0" + sha256_file(p).encode())
    items = tuple((p.name, functools.partial(_read, p)) for p in files)
    return CalibrationSet(str(folder), h.hexdigest(), items)


def _images(images: Iterable[Any]) -> CalibrationSet:
    from .io import load_image

    h = hashlib.sha256(b"images")
    items: list[tuple[str, Callable[[], NDArray[np.uint8]]]] = []
    for i, image in enumerate(images):
        if isinstance(image, (str, os.PathLike)):
            path = Path(image)
            h.update(sha256_file(path).encode())
            items.append((path.name, functools.partial(_read, path)))
        else:
            rgb = load_image(image).rgb
            h.update(str(rgb.shape).encode() + rgb.tobytes())
            items.append((f"image{i}", functools.partial(_identity, rgb)))
    if not items:
        raise UnsupportedOptionError("The calibration set is empty: pass at least one image.")
    return CalibrationSet(f"{len(items)} images", h.hexdigest(), tuple(items))


def calibration_set(
    calibration: str | os.PathLike[str] | Iterable[Any] | None = None,
    *,
    settings: QuantizationSettings = DEFAULT_SETTINGS,
) -> CalibrationSet:
    """The calibration images: bundled (default), a folder's images, or the caller's images.

    Args:
        calibration: ``None`` for the bundled photos (augmented unless ``settings.augment`` is
            false); a folder (its image files, not recursive); or an iterable of image inputs
            (paths, arrays, PIL images, bytes: anything :func:`rmbg.io.load_image` reads).
        settings: The quantization settings (for ``augment``).

    Raises:
        UnsupportedOptionError: An empty set, or a path that is not a folder.
    """
    if calibration is None:
        return _bundled(settings.augment)
    if isinstance(calibration, (str, os.PathLike)):
        folder = Path(calibration).expanduser()
        if not folder.is_dir():
            raise UnsupportedOptionError(
                f"calibration={str(calibration)!r} is not a folder. Pass a folder of photos like "
                "the ones you will process (20 or more), a list of images, or None for the "
                "bundled set."
            )
        return _folder(folder)
    return _images(calibration)


def heldout_photos() -> dict[str, NDArray[np.uint8]]:
    """The held-out evaluation photos, by name, as ``HxWx3`` uint8 RGB."""
    return {name: _read(PHOTO_DIR / "heldout" / f"{name}.jpg") for name in HELDOUT}


def heldout_digest() -> str:
    """sha256 of the held-out photos (part of the cache key: other photos, another verdict)."""
    h = hashlib.sha256(b"heldout")
    for name in HELDOUT:
        h.update(sha256_file(PHOTO_DIR / "heldout" / f"{name}.jpg").encode())
    return h.hexdigest()


# -- quantization -----------------------------------------------------------------------------------
def _import_nncf() -> Any:
    try:
        import nncf
    except ImportError as exc:
        raise BackendUnavailableError(
            "precision='int8' quantizes the model with NNCF, which is not installed. Install it "
            'with: pip install "rmbg[int8]" (or use precision="auto").'
        ) from exc
    return nncf


def _head_and_tail(model: Any) -> list[str]:
    """Friendly names of the first and the last convolution (image stem and mask head)."""
    convs = [op for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    if not convs:
        return []
    return sorted({convs[0].get_friendly_name(), convs[-1].get_friendly_name()})


def quantize(
    model: Any,
    calibration: CalibrationSet,
    *,
    spec: ModelSpec = RMBG_1_4,
    settings: QuantizationSettings = DEFAULT_SETTINGS,
) -> Any:
    """Quantize an f32 ``openvino.Model`` to INT8 with NNCF post-training quantization.

    Args:
        model: The f32 model (one image input, the mask as its only output).
        calibration: From :func:`calibration_set`.
        spec: The model facts: calibration images go through rmbg's own pre-processing.
        settings: NNCF options.

    Returns:
        The quantized ``openvino.Model`` (not yet checked: see :func:`evaluate`).
    """
    from .preprocess import preprocess

    nncf = _import_nncf()
    if settings.preset not in ("mixed", "performance"):
        raise UnsupportedOptionError(
            f"preset must be 'mixed' or 'performance', not {settings.preset!r}"
        )
    preset = (
        nncf.QuantizationPreset.MIXED
        if settings.preset == "mixed"
        else nncf.QuantizationPreset.PERFORMANCE
    )
    ignored = None
    if settings.keep_head_float:
        names = _head_and_tail(model)
        ignored = nncf.IgnoredScope(names=names, validate=False) if names else None

    def transform(item: tuple[str, Callable[[], NDArray[np.uint8]]]) -> NDArray[np.float32]:
        return preprocess(item[1](), spec)

    dataset = nncf.Dataset(list(calibration.items), transform)
    size = max(1, min(settings.subset_size, len(calibration)))
    logger.info(
        "quantizing to INT8 with NNCF %s: %d calibration samples (%s), preset %s",
        nncf.__version__,
        size,
        calibration.description,
        settings.preset,
    )
    return nncf.quantize(
        model,
        dataset,
        preset=preset,
        target_device=nncf.TargetDevice.ANY,
        subset_size=size,
        fast_bias_correction=settings.fast_bias_correction,
        ignored_scope=ignored,
    )


# -- evaluation -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class QuantizationReport:
    """How an INT8 model compares with f32 on the held-out photos.

    Attributes:
        photos: Per photo: ``{"iou", "mean_diff", "max_diff"}`` of the INT8 mask against f32's.
        bar: The bar that was applied.
        passed: Every photo meets the bar.
        calibration: ``{"source", "images", "samples", "seconds"}``.
        settings: The quantization settings.
        nncf: NNCF's version.
    """

    photos: Mapping[str, Mapping[str, float]]
    bar: QualityBar
    passed: bool
    calibration: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    nncf: str = ""

    @property
    def min_iou(self) -> float:
        """The worst IoU over the held-out photos."""
        return min(p["iou"] for p in self.photos.values())

    @property
    def max_mean_diff(self) -> float:
        """The worst mean absolute difference (grey levels) over the held-out photos."""
        return max(p["mean_diff"] for p in self.photos.values())

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for the cache manifest and ``EngineInfo.details``."""
        return {
            "photos": {k: dict(v) for k, v in self.photos.items()},
            "bar": dataclasses.asdict(self.bar),
            "passed": self.passed,
            "min_iou": self.min_iou,
            "max_mean_diff": self.max_mean_diff,
            "calibration": dict(self.calibration),
            "settings": dict(self.settings),
            "nncf": self.nncf,
        }

    def summary(self) -> str:
        """One line per photo, for error messages and logs."""
        return "; ".join(
            f"{name}: IoU {p['iou']:.4f}, mean diff {p['mean_diff']:.2f}"
            for name, p in self.photos.items()
        )


def mask_figures(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> dict[str, float]:
    """IoU of two masks thresholded at 128, and their mean and max absolute difference."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    fa, fb = a >= 128, b >= 128
    union = int(np.logical_or(fa, fb).sum())
    iou = float(np.logical_and(fa, fb).sum() / union) if union else 1.0
    return {"iou": iou, "mean_diff": float(d.mean()), "max_diff": float(d.max())}


def _masks(
    run: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    photos: Mapping[str, NDArray[np.uint8]],
    spec: ModelSpec,
) -> Iterator[tuple[str, NDArray[np.uint8]]]:
    from .postprocess import postprocess
    from .preprocess import preprocess

    for name, rgb in photos.items():
        yield name, postprocess(run(preprocess(rgb, spec)), (rgb.shape[0], rgb.shape[1]))


def evaluate(
    reference: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    candidate: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    photos: Mapping[str, NDArray[np.uint8]] | None = None,
    *,
    spec: ModelSpec = RMBG_1_4,
    bar: QualityBar = DEFAULT_BAR,
) -> QuantizationReport:
    """Compare the candidate's masks with the reference's on held-out photos.

    Args:
        reference: Runs the f32 network (float32 NCHW in, probabilities out).
        candidate: Runs the quantized network.
        photos: Held-out photos by name (default: :func:`heldout_photos`).
        spec: Model facts for the shared pre/post-processing.
        bar: The bar each photo must meet.
    """
    photos = heldout_photos() if photos is None else photos
    ref = dict(_masks(reference, photos, spec))
    figures: dict[str, dict[str, float]] = {}
    for name, mask in _masks(candidate, photos, spec):
        figures[name] = {k: round(v, 5) for k, v in mask_figures(ref[name], mask).items()}
    passed = all(
        f["iou"] >= bar.min_iou and f["mean_diff"] <= bar.max_mean_diff for f in figures.values()
    )
    return QuantizationReport(photos=figures, bar=bar, passed=passed)


def quantize_checked(
    core: Any,
    model: Any,
    *,
    calibration: CalibrationSet,
    spec: ModelSpec = RMBG_1_4,
    settings: QuantizationSettings = DEFAULT_SETTINGS,
    bar: QualityBar = DEFAULT_BAR,
    photos: Mapping[str, NDArray[np.uint8]] | None = None,
    device: str = "CPU",
) -> tuple[Any, QuantizationReport]:
    """Quantize ``model`` and evaluate it against f32 on ``device``; raise if it misses the bar.

    Args:
        core: An ``openvino.Core``.
        model: The f32 ``openvino.Model``.
        calibration: From :func:`calibration_set`.
        spec: Model facts.
        settings: NNCF options.
        bar: The quality bar.
        photos: Held-out photos (default: the bundled held-out set).
        device: Where the evaluation runs (the IR itself is device-independent).

    Returns:
        ``(int8 model, report)`` with ``report.passed`` true.

    Raises:
        QuantizationQualityError: The INT8 masks miss the bar on a held-out photo.
        BackendUnavailableError: NNCF is not installed.
    """
    nncf = _import_nncf()
    started = time.perf_counter()
    quantized = quantize(model, calibration, spec=spec, settings=settings)
    seconds = time.perf_counter() - started
    logger.info("INT8 quantization took %.1f s; evaluating on held-out photos", seconds)
    reference = _runner(core.compile_model(model, device, {"INFERENCE_PRECISION_HINT": "f32"}))
    candidate = _runner(core.compile_model(quantized, device))
    report = evaluate(reference, candidate, photos, spec=spec, bar=bar)
    report = dataclasses.replace(
        report,
        calibration={
            "source": calibration.description,
            "images": len(calibration),
            "samples": max(1, min(settings.subset_size, len(calibration))),
            "seconds": round(seconds, 1),
        },
        settings=settings.as_dict(),
        nncf=str(nncf.__version__),
    )
    logger.info("INT8 vs f32 on held-out photos: %s", report.summary())
    if not report.passed:
        raise QuantizationQualityError(
            f"The INT8 model misses the quality bar (IoU >= {bar.min_iou}, mean difference <= "
            f"{bar.max_mean_diff} grey levels against f32, on every held-out photo): "
            f"{report.summary()}. It was not saved. Calibrate on more photos like yours "
            '(backend_options={"calibration": "path/to/folder"}, 20 or more), or use '
            'precision="auto" (the fastest accurate precision of the device).',
            report,
        )
    return quantized, report


def _runner(compiled: Any) -> Callable[[NDArray[np.float32]], NDArray[np.float32]]:
    request = compiled.create_infer_request()

    def run(x: NDArray[np.float32]) -> NDArray[np.float32]:
        request.infer({0: x})
        return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)

    return run


def settings_from_options(options: Mapping[str, Any]) -> QuantizationSettings:
    """Quantization settings from a backend's ``options`` (``{"quantization": {...}}``)."""
    raw = options.get("quantization") or {}
    if not isinstance(raw, Mapping):
        raise UnsupportedOptionError(
            f"backend option 'quantization' must be a mapping, not {type(raw).__name__}"
        )
    fields = {f.name for f in dataclasses.fields(QuantizationSettings)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise UnsupportedOptionError(
            f"Unknown quantization option(s): {', '.join(unknown)}; known: {', '.join(sorted(fields))}."
        )
    return QuantizationSettings(**dict(raw))
