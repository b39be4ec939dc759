"""The :class:`BackgroundRemover` facade: resolve the model and backend once, one engine per device.

Request flow for one image::

    io.load_image  ->  preprocess.preprocess  ->  Engine (backend, per device)  ->
    postprocess.postprocess  ->  compose.shape_mask / compose.compose  ->  io.to_output

Everything except the Engine call is shared numpy code, identical for every backend.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray
from typing_extensions import Unpack

from . import compose as _compose
from . import io as _io
from . import pipeline as _pipeline
from .backends import get_backend
from .backends.base import PRECISIONS, Backend, BackendOptions, Engine, EngineInfo, ModelSource
from .errors import UnsupportedOptionError
from .options import CutoutKeywords, CutoutOptions, MaskKeywords, MaskOptions, Normalize
from .specs import RMBG_1_4, ModelSpec

__all__ = ["BackgroundRemover", "CutoutAndMask", "RemoverKeywords"]

logger = logging.getLogger("rmbg")


@dataclasses.dataclass(frozen=True)
class CutoutAndMask:
    """What :meth:`BackgroundRemover.cutout_and_mask` returns: both results of one network run, and the
    time each stage took.

    Attributes:
        cutout: The cutout, as :meth:`BackgroundRemover.cutout` returns it.
        mask: The shaped mask (full size, before any trim), as :meth:`BackgroundRemover.mask`
            returns it.
        seconds: Wall time per stage, in pipeline order: ``decode``, ``preprocess``, ``network``,
            ``postprocess``, ``shape`` (threshold/grow/feather/invert), ``compose`` (background,
            trim) and ``encode`` (the output conversion of both results).
    """

    cutout: Any
    mask: Any
    seconds: Mapping[str, float]


class BackgroundRemover:
    """Remove image backgrounds with RMBG-1.4 on the backend and device of your choice.

    Args:
        model: A Hugging Face Hub repo id (default: ``$RMBG_MODEL`` if set, else
            ``"briaai/RMBG-1.4"``), a local checkpoint
            folder (config.json + model.safetensors, the Hub layout) or ``.safetensors`` file, an
            ``.onnx`` export, an OpenVINO ``.xml`` IR, or a torch module returning the BriaRMBG
            output structure (e.g. loaded with transformers'
            ``AutoModelForImageSegmentation.from_pretrained(..., trust_remote_code=True)``).
        backend: ``"openvino"`` (default), ``"torch"`` (the reference) or any registered backend.
        device: Device to run on; OpenVINO: ``"AUTO"`` (default), ``"CPU"``, ``"GPU"``, ``"GPU.1"``,
            ``"NPU"``...; torch: ``"cpu"`` (default), ``"cuda"``, ``"cuda:1"``... Case-insensitive. A
            device that is not present raises :class:`~rmbg.errors.DeviceNotFoundError`.
        precision: ``"auto"`` (the device's fastest accurate default), ``"f32"`` (exact parity with
            the PyTorch reference), ``"bf16"``, ``"f16"`` or ``"int8"`` (OpenVINO: an INT8 IR built
            once with NNCF from the f32 one and kept only if its masks match f32's on held-out
            photos; see :mod:`rmbg.quantize`).
        cache_dir: Root of rmbg's cache of converted models (default ``$RMBG_CACHE_DIR`` or
            ``~/.cache/rmbg``). Hub downloads go to the Hugging Face cache (``HF_HOME``).
        revision: Hub revision (branch, tag or commit) of ``model``.
        token: Hugging Face token for the gated repository (default: ``HF_TOKEN`` / the login).
        backend_options: The backend's typed options, or a mapping of their fields (OpenVINO:
            :class:`~rmbg.backends.openvino.OpenVINOOptions`, e.g.
            ``{"performance_hint": "THROUGHPUT", "config": {...}}``; torch:
            ``{"num_threads": 2}``). An unknown key is an error listing the known ones.
        spec: Model facts (input size, normalisation); defaults to RMBG-1.4's.
        max_pixels: Largest input accepted, in pixels (default: Pillow's ``MAX_IMAGE_PIXELS``);
            ``None`` disables the guard.
        input_size: Run the network at this input size instead of the spec's (an int for a
            square, or ``(height, width)``; multiples of 32 from 256). Smaller is faster and less
            accurate: see ``docs/performance.md`` for the measured cost.
        calibration: ``precision="int8"`` only: a folder of photos like yours, or a list of
            images, to calibrate on instead of the bundled set.
        quantization: ``precision="int8"`` only: NNCF settings
            (:class:`rmbg.quantize.QuantizationSettings` or a mapping of its fields, e.g.
            ``{"subset_size": 64}``).

    Example:
        >>> remover = BackgroundRemover()                       # doctest: +SKIP
        >>> mask = remover.mask("photo.jpg")                    # doctest: +SKIP
        >>> remover.cutout("photo.jpg").save("cutout.png")      # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | Any = None,
        *,
        backend: str = "openvino",
        device: str | None = None,
        precision: str = "auto",
        cache_dir: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        token: str | bool | None = None,
        backend_options: BackendOptions | Mapping[str, Any] | None = None,
        spec: ModelSpec = RMBG_1_4,
        max_pixels: int | None = _io.DEFAULT_MAX_PIXELS,
        input_size: int | tuple[int, int] | None = None,
        calibration: str | os.PathLike[str] | Iterable[Any] | None = None,
        quantization: Any = None,
    ) -> None:
        from .weights import default_model, resolve_model

        if precision not in PRECISIONS:
            raise UnsupportedOptionError(
                f"precision={precision!r} is not one of: {', '.join(PRECISIONS)}."
            )
        if precision != "int8" and (calibration is not None or quantization is not None):
            raise UnsupportedOptionError(
                "calibration= and quantization= set how an INT8 model is built: they need "
                'precision="int8".'
            )
        backend_cls = get_backend(backend)
        if precision == "int8" and not backend_cls.quantizable:
            raise UnsupportedOptionError(
                f"precision='int8' is an OpenVINO (NNCF) feature; the {backend_cls.name!r} backend "
                "cannot run it. Use backend='openvino'."
            )
        if model is None:
            model = default_model(spec)
        self.source: ModelSource = (
            model
            if isinstance(model, ModelSource)
            else resolve_model(model, spec=spec, revision=revision, token=token)
        )
        if input_size is not None:
            self.source = _with_input_size(self.source, input_size)
        if self.source.kind not in backend_cls.accepts:
            raise UnsupportedOptionError(
                f"The {backend_cls.name!r} backend cannot run a model of kind "
                f"{self.source.kind!r} ({self.source.path}); it accepts: "
                f"{', '.join(backend_cls.accepts)}. Use backend='openvino' for ONNX files and IRs."
            )
        root = Path(cache_dir) if cache_dir is not None else None
        options = backend_cls.Options.parse(backend_options, backend_cls.name)  # before any work
        self.quantization: Mapping[str, Any] | None = None
        """``precision="int8"``: the INT8 model's figures against f32 on the held-out photos."""
        run_precision = precision
        if precision == "int8":
            from . import cache, quantize

            built = quantize.build_int8(
                backend_cls,
                self.source,
                cache_root=root if root is not None else cache.default_cache_dir(),
                calibration=calibration,
                quantization=quantization,
            )
            self.source, self.quantization, run_precision = built.source, built.report, "auto"
        self._backend: Backend = backend_cls(
            self.source, precision=run_precision, cache_dir=root, options=options
        )
        self.backend: str = backend_cls.name
        self.precision: str = precision
        self.device: str = self._backend.canonical_device(device or backend_cls.default_device)
        self.max_pixels = max_pixels
        self._engines: dict[str, Engine] = {}
        self._engine_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def __repr__(self) -> str:
        where = self.source.repo_id or self.source.path or type(self.source.module).__name__
        return (
            f"BackgroundRemover(model={str(where)!r}, backend={self.backend!r}, "
            f"device={self.device!r}, precision={self.precision!r})"
        )

    # -- engines --------------------------------------------------------------------------------
    @property
    def spec(self) -> ModelSpec:
        """The model facts in use (input size, normalisation)."""
        return self.source.spec

    def available_devices(self) -> tuple[str, ...]:
        """Devices the remover's backend can use on this machine."""
        return self._backend.available_devices()

    def engine(self, device: str | None = None) -> Engine:
        """The engine for ``device`` (default: the remover's), compiled on first use and memoised."""
        name = self._backend.canonical_device(device) if device is not None else self.device
        engine = self._engines.get(name)
        if engine is not None:
            return engine
        with self._locks_lock:
            lock = self._engine_locks.setdefault(name, threading.Lock())
        with lock:
            engine = self._engines.get(name)
            if engine is None:
                engine = self._backend.load(name)
                self._engines[name] = engine
        return engine

    @property
    def info(self) -> EngineInfo:
        """Backend, device (and under AUTO the device that actually runs), precision, model files
        (and for ``precision="int8"``, ``details["quantization"]``: the figures against f32).

        Compiles the default device's engine if that has not happened yet.
        """
        info = self.engine().info
        if self.quantization is None:
            return info
        return dataclasses.replace(
            info,
            precision="int8",
            inference_precision=f"int8 (other layers: {info.inference_precision})",
            details={**info.details, "quantization": dict(self.quantization)},
        )

    def warmup(self, device: str | None = None) -> None:
        """Load/compile the engine and run one inference, so the first real call is fast."""
        h, w = self.spec.input_size
        self.engine(device)(np.zeros((1, 3, h, w), np.float32))

    # -- array-level core ---------------------------------------------------------------------
    def predict(
        self,
        rgb: NDArray[np.uint8],
        *,
        device: str | None = None,
        normalize: Normalize = "minmax",
    ) -> NDArray[np.uint8]:
        """The reference mask of an ``HxWx3`` uint8 RGB array: ``HxW`` uint8, no shaping options."""
        return _pipeline.predict(self.engine(device), rgb, self.spec, normalize=normalize)

    # -- public image API -----------------------------------------------------------------------
    def mask(
        self,
        image: _io.ImageInput,
        options: MaskOptions | None = None,
        *,
        device: str | None = None,
        output: _io.OutputKind = "auto",
        **keywords: Unpack[MaskKeywords],
    ) -> Any:
        """The soft alpha mask of ``image``, the same height and width as the image.

        Args:
            image: A path, bytes, a binary file, a PIL image or a numpy array.
            options: :class:`~rmbg.options.MaskOptions` (normalisation, threshold, feather, grow,
                invert, EXIF orientation); the keywords below are the same options spelt inline,
                applied on top of ``options``.
            device: Run on this device instead of the remover's (compiled once, memoised).
            output: ``"auto"`` mirrors the input (below); ``"array"``, ``"pil"`` or ``"png"``
                (bytes, rmbg's fast lossless encoder) whatever the input.
            **keywords: Any field of :class:`~rmbg.options.MaskOptions`, e.g. ``threshold=0.5``,
                ``feather=2``, ``grow=3``, ``invert=True``, ``normalize="none"``,
                ``exif_transpose=False``.

        Returns:
            Mirrors the input: a mode ``"L"`` PIL image for a path, file or PIL input, an ``HxW``
            uint8 array for an array, PNG bytes for bytes.

        Raises:
            UnsupportedOptionError: A bad option (before the image is read).
            InvalidImageError: The input is not an image rmbg can read.
        """
        opts = MaskOptions.build(options, **keywords)
        _io.check_output(output)
        return self._mask(image, opts, device, output)

    def cutout(
        self,
        image: _io.ImageInput,
        options: CutoutOptions | MaskOptions | None = None,
        *,
        device: str | None = None,
        output: _io.OutputKind = "auto",
        **keywords: Unpack[CutoutKeywords],
    ) -> Any:
        """The image with its background removed: RGBA, or RGB over an opaque ``background``.

        The alpha is the model's mask (shaped by ``threshold``/``feather``/``grow``/``invert``)
        combined with the input's own alpha, so pixels that were transparent stay transparent.

        Args:
            image: A path, bytes, a binary file, a PIL image or a numpy array.
            options: :class:`~rmbg.options.CutoutOptions` (the mask options, plus background,
                trim, margin, trim_threshold, refine_foreground); the keywords below are the
                same options spelt inline, applied on top of ``options``.
            device: Run on this device instead of the remover's.
            output: ``"auto"`` mirrors the input (below); ``"array"``, ``"pil"`` or ``"png"``
                (bytes, rmbg's fast lossless encoder) whatever the input.
            **keywords: Any field of :class:`~rmbg.options.CutoutOptions`, e.g.
                ``background="white"`` (a colour, or an image as a ``pathlib.Path``, bytes, a PIL
                image or an array), ``trim=True, margin=8``, ``refine_foreground=True``.

        Returns:
            Mirrors the input: a PIL image (``"RGBA"``, or ``"RGB"`` over an opaque background) for a
            path, file or PIL input, an ``HxWx4``/``HxWx3`` uint8 array for an array, PNG bytes for
            bytes. Fully transparent pixels of an RGBA cutout are ``(0, 0, 0, 0)``.

        Raises:
            UnsupportedOptionError: A bad option (before the image is read).
            InvalidImageError: The input (or the background image) is not an image rmbg can read.
        """
        opts = CutoutOptions.build(options, **keywords)
        _io.check_output(output)
        return self._cutout(image, opts, device, output)

    def _shaped_mask(
        self,
        loaded: _io.LoadedImage,
        opts: MaskOptions,
        device: str | None,
        seconds: dict[str, float] | None = None,
    ) -> NDArray[np.uint8]:
        mask = _pipeline.predict(
            self.engine(device), loaded.rgb, self.spec, normalize=opts.normalize, seconds=seconds
        )
        started = time.perf_counter()
        shaped = _compose.shape_mask(
            mask, threshold=opts.threshold, feather=opts.feather, grow=opts.grow, invert=opts.invert
        )
        if seconds is not None:
            seconds["shape"] = time.perf_counter() - started
        return shaped

    def _load(self, image: _io.ImageInput, opts: MaskOptions) -> _io.LoadedImage:
        return _io.load_image(image, exif_transpose=opts.exif_transpose, max_pixels=self.max_pixels)

    def _mask(
        self, image: _io.ImageInput, opts: MaskOptions, device: str | None, output: _io.OutputKind
    ) -> Any:
        loaded = self._load(image, opts)
        return _io.to_output(self._shaped_mask(loaded, opts, device), loaded, output)

    def _cutout(
        self,
        image: _io.ImageInput,
        opts: CutoutOptions,
        device: str | None,
        output: _io.OutputKind,
    ) -> Any:
        loaded = self._load(image, opts)
        out, _ = self._compose(loaded, opts, device, None)
        return _io.to_output(out, loaded, output)

    def _compose(
        self,
        loaded: _io.LoadedImage,
        opts: CutoutOptions,
        device: str | None,
        seconds: dict[str, float] | None,
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """The cutout array and the shaped mask it was made from."""
        mask = self._shaped_mask(loaded, opts, device, seconds)
        started = time.perf_counter()
        out = _compose.compose(
            loaded.colors,  # the input's own colours, not the white-flattened network view
            mask,
            alpha=loaded.alpha,
            background=opts.backdrop,
            refine_foreground=opts.refine_foreground,
        )
        if opts.trim:
            box = _compose.trim_box(
                _compose.combined_alpha(mask, loaded.alpha),
                margin=opts.trim_margin,
                threshold=opts.trim_level,
            )
            if box is not None:
                x0, y0, x1, y1 = box
                out = np.ascontiguousarray(out[y0:y1, x0:x1])
        if seconds is not None:
            seconds["compose"] = time.perf_counter() - started
        return out, mask

    def cutout_and_mask(
        self,
        image: _io.ImageInput,
        options: CutoutOptions | MaskOptions | None = None,
        *,
        device: str | None = None,
        output: _io.OutputKind = "auto",
        **keywords: Unpack[CutoutKeywords],
    ) -> CutoutAndMask:
        """The cutout *and* its mask from one network run, with the time of each stage.

        What an interactive frontend wants (a demo showing both results and where the time went,
        a service reporting stage timings): the same results as :meth:`cutout` and :meth:`mask`
        with the same options, at the cost of one.

        Args:
            image, options, device, output, **keywords: As for :meth:`cutout` (``output``
                applies to both results).

        Returns:
            A :class:`CutoutAndMask`: ``.cutout``, ``.mask`` and ``.seconds`` per stage.

        Raises:
            UnsupportedOptionError: A bad option (before the image is read).
            InvalidImageError: The input (or the background image) is not an image rmbg can read.
        """
        opts = CutoutOptions.build(options, **keywords)
        _io.check_output(output)
        started = time.perf_counter()
        loaded = self._load(image, opts)
        seconds = {"decode": time.perf_counter() - started}
        out, mask = self._compose(loaded, opts, device, seconds)
        started = time.perf_counter()
        cutout = _io.to_output(out, loaded, output)
        mask_out = _io.to_output(mask, loaded, output)
        seconds["encode"] = time.perf_counter() - started
        return CutoutAndMask(cutout=cutout, mask=mask_out, seconds=seconds)

    # -- video --------------------------------------------------------------------------------------
    def video(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        options: Any = None,
        **keywords: Any,
    ) -> Any:
        """Cut the subject out of a clip: ``remover.video("in.mp4", "out.webm")``.

        Needs ``pip install "rmbg[video]"``. Outputs by suffix or ``format=``: WebM VP9 or
        ProRes 4444 ``.mov`` with alpha, ``.mp4`` over an opaque ``background``, a PNG folder, or
        ``format="mask"``. Arguments and result: :func:`rmbg.video.remove_background`.
        """
        from .video import remove_background

        return remove_background(self, src, dst, options, **keywords)

    # -- pipelined batches ----------------------------------------------------------------------
    def masks(
        self,
        images: Iterable[_io.ImageInput],
        options: MaskOptions | None = None,
        **keywords: Unpack[MaskBatchKeywords],
    ) -> Iterator[Any]:
        """Masks of many images, yielded in input order, with decoding, pre/post-processing and
        inference of different images overlapping.

        Args:
            images: Any iterable of inputs :meth:`mask` accepts (consumed lazily).
            options: As for :meth:`mask`.
            **keywords: The batch controls below, and ``device``, ``output`` and the option
                keywords of :meth:`mask`: all validated once, before the first image is read.
            workers: Images in flight at once (default: the engine's infer requests + 2).
            return_exceptions: Yield the exception raised for a bad image in its place instead of
                raising it (and stopping) — what a batch job that must not stop wants.
            then: Applied to each result in the worker thread (e.g. encode to PNG bytes), so that
                this work overlaps inference too; its return value is what is yielded.

        Yields:
            One result per input, in order, typed as :meth:`mask` returns it.
        """
        controls = BatchControls.take(keywords)
        opts = MaskOptions.build(options, **keywords)
        return self._pipeline(self._mask, opts, images, controls)

    def cutouts(
        self,
        images: Iterable[_io.ImageInput],
        options: CutoutOptions | MaskOptions | None = None,
        **keywords: Unpack[CutoutBatchKeywords],
    ) -> Iterator[Any]:
        """Cutouts of many images, in input order, pipelined like :meth:`masks` (the same batch
        controls: ``workers``, ``return_exceptions``, ``then``, ``device``, ``output``).

        Args:
            images: Any iterable of inputs :meth:`cutout` accepts (consumed lazily).
            options: As for :meth:`cutout`; validated once, and a background image decoded once,
                before the first image is read.
            **keywords: The batch controls, and the option keywords of :meth:`cutout`.
        """
        controls = BatchControls.take(keywords)
        opts = CutoutOptions.build(options, **keywords)
        return self._pipeline(self._cutout, opts, images, controls)

    def _pipeline(
        self,
        fn: Callable[..., Any],
        opts: MaskOptions,
        images: Iterable[_io.ImageInput],
        controls: BatchControls,
    ) -> Iterator[Any]:
        _io.check_output(controls.output)
        engine = self.engine(controls.device)  # compile before the threads start
        workers = controls.workers
        if workers is None:
            workers = int(getattr(engine, "n_requests", 1)) + 2
        call: Callable[[Any], Any] = functools.partial(
            fn, opts=opts, device=controls.device, output=controls.output
        )
        if controls.then is not None:
            call = _chain(call, controls.then)
        return self._run_pipeline(call, images, workers, controls.return_exceptions)

    def _run_pipeline(
        self,
        call: Callable[[Any], Any],
        images: Iterable[_io.ImageInput],
        workers: int,
        return_exceptions: bool,
    ) -> Iterator[Any]:
        with cf.ThreadPoolExecutor(workers, thread_name_prefix="rmbg") as pool:
            pending: collections.deque[cf.Future[Any]] = collections.deque()
            it = iter(images)
            try:
                for image in it:
                    pending.append(pool.submit(call, image))
                    if len(pending) >= workers:
                        yield self._result(pending.popleft(), return_exceptions)
                while pending:
                    yield self._result(pending.popleft(), return_exceptions)
            finally:
                for f in pending:
                    f.cancel()

    @staticmethod
    def _result(future: cf.Future[Any], return_exceptions: bool) -> Any:
        try:
            return future.result()
        except Exception as exc:
            if return_exceptions:
                return exc
            raise


class RemoverKeywords(TypedDict, total=False):
    """:class:`BackgroundRemover`'s keywords after ``model``, typed once for the frontends that
    make removers elsewhere (Ray's actors, the command line); the meanings are the class's."""

    backend: str
    device: str | None
    precision: str
    cache_dir: str | os.PathLike[str] | None
    revision: str | None
    token: str | bool | None
    backend_options: BackendOptions | Mapping[str, Any] | None
    spec: ModelSpec
    max_pixels: int | None
    input_size: int | tuple[int, int] | None
    calibration: str | os.PathLike[str] | Iterable[Any] | None
    quantization: Any


class BatchKeywords(TypedDict, total=False):
    """The batch controls of :meth:`BackgroundRemover.masks` / :meth:`~BackgroundRemover.cutouts`."""

    device: str | None
    output: _io.OutputKind
    workers: int | None
    return_exceptions: bool
    then: Callable[[Any], Any] | None


class MaskBatchKeywords(MaskKeywords, BatchKeywords, total=False):
    """``masks()``'s keywords: the batch controls and the mask options."""


class CutoutBatchKeywords(CutoutKeywords, BatchKeywords, total=False):
    """``cutouts()``'s keywords: the batch controls and the cutout options."""


@dataclasses.dataclass(frozen=True)
class BatchControls:
    """How a batch runs (not what it makes): taken out of a batch call's keywords."""

    device: str | None = None
    output: _io.OutputKind = "auto"
    workers: int | None = None
    return_exceptions: bool = False
    then: Callable[[Any], Any] | None = None

    @classmethod
    def take(cls, keywords: Any) -> BatchControls:
        """Remove the batch controls from ``keywords`` (in place) and check them."""
        names = [f.name for f in dataclasses.fields(cls)]
        controls = cls(**{n: keywords.pop(n) for n in names if n in keywords})
        if controls.workers is not None and (
            not isinstance(controls.workers, int) or controls.workers < 1
        ):
            raise UnsupportedOptionError(
                f"workers must be a whole number >= 1, not {controls.workers!r}."
            )
        if controls.then is not None and not callable(controls.then):
            raise UnsupportedOptionError(f"then must be callable, not {controls.then!r}.")
        return controls


def _with_input_size(source: ModelSource, input_size: int | tuple[int, int]) -> ModelSource:
    """``source`` with its spec's network input size replaced (validated)."""
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if (
        len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in size)
        or not all(v >= 256 and v % 32 == 0 for v in size)
    ):
        raise UnsupportedOptionError(
            f"input_size must be an int or an (height, width) pair of multiples of 32 from 256, "
            f"not {input_size!r}."
        )
    if source.kind == "ir" and tuple(size) != source.spec.input_size:
        raise UnsupportedOptionError(
            "input_size= cannot change an OpenVINO IR's fixed input shape; pass the checkpoint, "
            "the .onnx export or the torch module instead."
        )
    return dataclasses.replace(source, spec=source.spec.with_input_size(size[0], size[1]))


def _chain(first: Callable[[Any], Any], second: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def both(item: Any) -> Any:
        return second(first(item))

    return both
