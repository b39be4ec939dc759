"""``precision="int8"``: a build step above the backends that makes an INT8 OpenVINO IR from the
f32 one, checks it against f32, caches it, and hands the backend an IR to run.

The flow, run by :class:`~rmbg.BackgroundRemover` when ``precision="int8"`` (:func:`build_int8`)::

    the backend's f32 IR (converted into the cache first, through the backend's public API)
    calibration photos (bundled + augmented, or the user's folder / images)
        -> the shared pre-processing -> nncf.quantize(f32 IR)              (statistics, bias fix)
    held-out photos (disjoint from the calibration set)
        -> f32 mask and int8 mask through the shared pipeline (rmbg.pipeline.predict) at the
           photo's size, each model run by the backend's own engine -> IoU, mean |diff|
    every held-out photo meets the bar  -> the int8 IR is saved under its own cache key
    one does not                       -> QuantizationQualityError, nothing is cached

The bar (:data:`DEFAULT_BAR`): mask IoU >= 0.99 (masks thresholded at 128) and a mean absolute
difference <= 2 grey levels, per held-out photo. The calibration set defaults to the bundled
photos (:mod:`rmbg.photos`) with deterministic augmentations (flips, crops, rescales, grey and
contrast variants); the held-out set is :data:`rmbg.photos.HELDOUT`, never used for calibration.

NNCF (``pip install "rmbg[int8]"``) is imported only here, only when a model is quantized.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import cache
from ._version import __version__
from .cache import sha256_file
from .errors import BackendUnavailableError, QuantizationQualityError, UnsupportedOptionError
from .metrics import mask_figures
from .photos import bundled_photos, image_suffixes
from .photos import heldout_photos as heldout_paths
from .pipeline import Network, predict
from .source import ModelSource
from .specs import RMBG_1_4, ModelSpec

__all__ = [
    "DEFAULT_BAR",
    "DEFAULT_SETTINGS",
    "FORMAT",
    "CalibrationSet",
    "Int8Model",
    "QualityBar",
    "QuantizationReport",
    "QuantizationSettings",
    "build_int8",
    "cache_parts",
    "calibration_set",
    "evaluate",
    "heldout_digest",
    "heldout_photos",
    "quantize",
    "settings",
]

logger = logging.getLogger("rmbg")

#: Version of the augmentation recipe (part of the cache key: a new recipe re-quantizes).
AUGMENT_VERSION = 1


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
    paths = bundled_photos()
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
    suffixes = image_suffixes()
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise UnsupportedOptionError(
            f"The calibration folder {folder} holds no images rmbg can read (.jpg, .png, .webp...)."
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
    return {p.stem: _read(p) for p in heldout_paths()}


def heldout_digest() -> str:
    """sha256 of the held-out photos (part of the cache key: other photos, another verdict)."""
    h = hashlib.sha256(b"heldout")
    for p in heldout_paths():
        h.update(sha256_file(p).encode())
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
    with _quiet(nncf) if not logger.isEnabledFor(logging.INFO) else contextlib.nullcontext():
        return nncf.quantize(
            model,
            dataset,
            preset=preset,
            target_device=nncf.TargetDevice.ANY,
            subset_size=size,
            fast_bias_correction=settings.fast_bias_correction,
            ignored_scope=ignored,
        )


@contextlib.contextmanager
def _quiet(nncf: Any) -> Iterator[None]:
    """NNCF's INFO lines and progress bars (rich, to stdout/stderr) held back, unless rmbg's own
    logger is at INFO or more verbose (``rmbg -v``). Its warnings still show, once it is done."""
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.WARNING)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        nncf_logger.setLevel(level)
        held = "\n".join(
            line for line in (out.getvalue() + err.getvalue()).splitlines() if "WARNING" in line
        )
        if held:
            logger.warning("NNCF: %s", held)


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


def evaluate(
    reference: Network,
    candidate: Network,
    photos: Mapping[str, NDArray[np.uint8]] | None = None,
    *,
    spec: ModelSpec = RMBG_1_4,
    bar: QualityBar = DEFAULT_BAR,
) -> QuantizationReport:
    """Compare the candidate's masks with the reference's on held-out photos, each mask made by
    the shared pipeline (:func:`rmbg.pipeline.predict`) at the photo's own size.

    Args:
        reference: Runs the f32 network (an engine: float32 NCHW in, probabilities out).
        candidate: Runs the quantized network.
        photos: Held-out photos by name (default: :func:`heldout_photos`).
        spec: Model facts for the shared pre/post-processing.
        bar: The bar each photo must meet.
    """
    photos = heldout_photos() if photos is None else photos
    figures: dict[str, dict[str, float]] = {}
    for name, rgb in photos.items():
        ref = predict(reference, rgb, spec)
        got = predict(candidate, rgb, spec)
        figures[name] = {k: round(v, 5) for k, v in mask_figures(ref, got).items()}
    passed = all(
        f["iou"] >= bar.min_iou and f["mean_diff"] <= bar.max_mean_diff for f in figures.values()
    )
    return QuantizationReport(photos=figures, bar=bar, passed=passed)


# -- the build step -------------------------------------------------------------------------------
#: Version of the INT8 cache entries' layout and key (a new one re-quantizes).
FORMAT = 2


def settings(value: QuantizationSettings | Mapping[str, Any] | None) -> QuantizationSettings:
    """Quantization settings from a :class:`QuantizationSettings`, a mapping of its fields, or
    ``None`` (the defaults).

    Raises:
        UnsupportedOptionError: An unknown field (the message lists the known ones) or a bad type.
    """
    if value is None:
        return DEFAULT_SETTINGS
    if isinstance(value, QuantizationSettings):
        return value
    if not isinstance(value, Mapping):
        raise UnsupportedOptionError(
            f"quantization= must be a QuantizationSettings or a mapping of its fields, not "
            f"{type(value).__name__}"
        )
    fields = {f.name for f in dataclasses.fields(QuantizationSettings)}
    unknown = sorted(set(value) - fields)
    if unknown:
        raise UnsupportedOptionError(
            f"Unknown quantization option(s): {', '.join(unknown)}; known: {', '.join(sorted(fields))}."
        )
    return QuantizationSettings(**dict(value))


@dataclasses.dataclass(frozen=True)
class Int8Model:
    """What :func:`build_int8` hands the backend: the INT8 IR, and how it was judged.

    Attributes:
        source: The INT8 IR in the cache, as a model source of kind ``"ir"``.
        report: The figures against f32 on the held-out photos (from the cache manifest).
    """

    source: ModelSource
    report: Mapping[str, Any]


def cache_parts(
    source: ModelSource,
    settings: QuantizationSettings,
    calibration: CalibrationSet,
    bar: QualityBar,
) -> dict[str, Any]:
    """What makes one INT8 model differ from another: the model, the settings, the calibration
    and held-out data, the bar and the versions. Hashed into the INT8 cache entry's key."""
    import openvino as ov

    spec = source.spec
    return {
        "precision": "int8",
        "weights": source.weights_digest,
        "kind": source.kind,
        "spec": spec.digest(),
        "input_shape": [1, 3, *spec.input_size],
        "settings": settings.as_dict(),
        "calibration": calibration.digest,
        "heldout": heldout_digest(),
        "bar": dataclasses.asdict(bar),
        "rmbg": __version__,
        "openvino": ov.get_version(),
        "format": FORMAT,
    }


def build_int8(
    backend_cls: Any,
    source: ModelSource,
    *,
    cache_root: Path,
    calibration: str | os.PathLike[str] | Iterable[Any] | None = None,
    quantization: QuantizationSettings | Mapping[str, Any] | None = None,
    bar: QualityBar = DEFAULT_BAR,
    device: str = "CPU",
) -> Int8Model:
    """The INT8 IR of ``source``: from the cache, or built from the backend's f32 IR and checked.

    Args:
        backend_cls: The OpenVINO backend class (its public ``read_model()`` gives the f32
            ``openvino.Model``; its engines run both models for the evaluation).
        source: The model to quantize.
        cache_root: rmbg's cache root (the entry goes under ``ir/<key>``).
        calibration: ``None`` (the bundled photos), a folder, or images (see
            :func:`calibration_set`).
        quantization: NNCF settings (:class:`QuantizationSettings` or a mapping of its fields).
        bar: The bar every held-out photo must meet.
        device: Where the evaluation runs (the IR itself is device-independent).

    Raises:
        QuantizationQualityError: The INT8 masks miss the bar on a held-out photo (nothing is
            cached).
        BackendUnavailableError: NNCF is not installed.
    """
    chosen = settings(quantization)
    cal = calibration_set(calibration, settings=chosen)
    parts = cache_parts(source, chosen, cal, bar)
    key = cache.cache_key(parts)
    entry = cache_root / "ir" / key

    def build(folder: Path, metadata: dict[str, Any]) -> None:
        metadata["quantization"] = _quantize_into(
            folder, backend_cls, source, cache_root, cal, chosen, bar, device
        )

    manifest = cache.get_or_build(
        entry,
        build,
        metadata={"key": parts},
        what="INT8 model",
        expect="NNCF calibration and a check on held-out photos: 1-3 minutes on 2 CPU cores",
    )
    ir = entry / "model.xml"
    report = manifest.get("quantization")
    return Int8Model(
        source=ModelSource(
            kind="ir",
            spec=source.spec,
            path=ir,
            weights_path=ir.with_suffix(".bin"),
            weights_digest=f"int8:{key}",
            repo_id=source.repo_id,
            revision=source.revision,
        ),
        report=dict(report) if isinstance(report, Mapping) else {},
    )


def _quantize_into(
    folder: Path,
    backend_cls: Any,
    source: ModelSource,
    cache_root: Path,
    calibration: CalibrationSet,
    chosen: QuantizationSettings,
    bar: QualityBar,
    device: str,
) -> dict[str, Any]:
    """Quantize the f32 IR into ``folder/model.xml``, evaluate it, and return the report."""
    import openvino as ov

    nncf = _import_nncf()
    f32 = backend_cls(
        source, precision="f32", cache_dir=cache_root, options={"compile_cache": False}
    )
    started = time.perf_counter()
    quantized = quantize(f32.read_model(), calibration, spec=source.spec, settings=chosen)
    seconds = time.perf_counter() - started
    quantized.set_rt_info("int8", ["rmbg", "precision"])
    quantized.set_rt_info(__version__, ["rmbg", "version"])
    ov.save_model(quantized, str(folder / "model.xml"), compress_to_fp16=False)
    logger.info("INT8 quantization took %.1f s; evaluating on held-out photos", seconds)
    candidate = backend_cls(
        ModelSource(kind="ir", spec=source.spec, path=folder / "model.xml"),
        precision="auto",
        cache_dir=cache_root,
        options={"compile_cache": False},
    )
    report = evaluate(f32.load(device), candidate.load(device), spec=source.spec, bar=bar)
    report = dataclasses.replace(
        report,
        calibration={
            "source": calibration.description,
            "images": len(calibration),
            "samples": max(1, min(chosen.subset_size, len(calibration))),
            "seconds": round(seconds, 1),
        },
        settings=chosen.as_dict(),
        nncf=str(nncf.__version__),
    )
    logger.info("INT8 vs f32 on held-out photos: %s", report.summary())
    if not report.passed:
        raise QuantizationQualityError(
            f"The INT8 model misses the quality bar (IoU >= {bar.min_iou}, mean difference <= "
            f"{bar.max_mean_diff} grey levels against f32, on every held-out photo): "
            f"{report.summary()}. It was not saved. Calibrate on more photos like yours "
            '(calibration="path/to/folder", 20 or more), or use precision="auto" (the fastest '
            "accurate precision of the device).",
            report.as_dict(),
        )
    return report.as_dict()
