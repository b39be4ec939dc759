"""Cut the subject out of a video clip: ``remover.video("in.mp4", "out.webm")``.

Needs ``pip install "rmbg[video]"`` (PyAV, whose wheels bundle FFmpeg). The flow::

    Reader (PyAV decode, upright RGB)  ->  remover.masks(...) (pipelined: decoding, inference and
    encoding overlap)  ->  TemporalSmoother  ->  compose.shape_mask / compose.compose  ->
    Writer (PyAV encode, audio copied)  ->  atomic rename onto the target

Memory is bounded by the frames in flight (the remover's workers), whatever the clip's length.

Outputs (``format=``, or the target's suffix):

=========  ===========================================  ===========================
format     what                                         alpha
=========  ===========================================  ===========================
``webm``   VP9 (``yuva420p``), audio as Opus/Vorbis     yes (read it with libvpx)
``mov``    ProRes 4444 (``yuva444p10le``), audio as is  yes, 16-bit, lossless
``mp4``    H.264 over an opaque ``background``          no (needs a background)
``png``    a folder of ``frame_000001.png`` + timecodes  yes, lossless
``mask``   the mask as greyscale video (.mp4/.mov/.mkv/  it *is* the alpha
           .webm; .mkv is lossless FFV1)
=========  ===========================================  ===========================

Frame rate, time base and each frame's timestamp (variable frame rate included), size, display
rotation and duration are kept; audio is copied when the container takes its codec, otherwise
transcoded (Opus in WebM, AAC in MP4); a PNG folder gets ``audio.mka`` beside its frames.
See ``docs/video.md``.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _validate as check
from .. import compose as _compose
from ..errors import UnsupportedOptionError
from ..options import CutoutOptions, MaskOptions
from ._formats import FORMATS, Format, choose_encoding, format_of
from ._streams import Frame, Reader, Writer, atomic_target, import_av
from .smoothing import DEFAULT_SMOOTHING, TemporalSmoother, check_strength

__all__ = [
    "DEFAULT_SMOOTHING",
    "FORMATS",
    "Format",
    "TemporalSmoother",
    "VideoOptions",
    "VideoProgress",
    "VideoResult",
    "remove_background",
]

logger = logging.getLogger("rmbg")

#: What ``progress=`` receives, once per frame written.
ProgressCallback = Callable[["VideoProgress"], None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class VideoOptions:
    """How a clip is written, beside the per-frame :class:`~rmbg.options.CutoutOptions`.

    Attributes:
        format: ``"webm"``, ``"mov"``, ``"mp4"``, ``"png"`` or ``"mask"``; ``None``: from the
            target's suffix (a target without one is a folder of PNG frames).
        smoothing: Temporal smoothing strength in ``[0, 1)``: the weight of the previous mask
            where the picture is still (see :mod:`rmbg.video.smoothing`); 0 turns it off.
        quality: CRF of the VP9 or H.264 encoder (lower is better and bigger); ``None``: rmbg's
            defaults (VP9 18, H.264 18, mask H.264 12). ProRes and PNG are not tuned by it.
        audio: Keep the audio (copied when the container takes it, else transcoded).
        overwrite: Replace an existing target (atomically). ``False`` raises ``FileExistsError``.
    """

    format: Format | None = None
    smoothing: float = DEFAULT_SMOOTHING
    quality: int | None = None
    audio: bool = True
    overwrite: bool = True

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in FORMATS:
            format_of(Path("x"), self.format)  # raises with the list
        object.__setattr__(self, "smoothing", check_strength(self.smoothing))
        if self.quality is not None and not check.is_int(self.quality):
            raise UnsupportedOptionError(f"quality must be an int (a CRF), not {self.quality!r}")
        object.__setattr__(self, "audio", check.flag("audio", self.audio))
        object.__setattr__(self, "overwrite", check.flag("overwrite", self.overwrite))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names."""
        return tuple(f.name for f in dataclasses.fields(cls))


@dataclasses.dataclass(frozen=True)
class VideoProgress:
    """Where a clip's processing stands (passed to ``progress=`` after each frame).

    Attributes:
        frames: Frames written so far.
        total: Frames expected (from the clip's header; ``None`` when it does not say).
        elapsed: Seconds since the first frame was decoded.
    """

    frames: int
    total: int | None
    elapsed: float

    @property
    def fps(self) -> float:
        """Frames per second so far."""
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current speed (``None`` without a total)."""
        if self.total is None or self.fps == 0:
            return None
        return max(0.0, (self.total - self.frames) / self.fps)


@dataclasses.dataclass(frozen=True)
class VideoResult:
    """What :func:`remove_background` wrote.

    Attributes:
        path: The output file or folder.
        format: Its format.
        frames: Frames written.
        size: ``(width, height)`` of the frames as written.
        rotation: Display rotation written with them (degrees counter-clockwise): the input's
            for a video file, 0 for PNG frames (written upright, as with a PyAV older than 18).
        duration: Seconds from the first frame's timestamp to the last frame's end.
        seconds: Wall-clock processing time.
        audio: What happened to each audio stream (``"aac copied"``, ``"aac transcoded to
            libopus"``...).
    """

    path: Path
    format: str
    frames: int
    size: tuple[int, int]
    rotation: int
    duration: float | None
    seconds: float
    audio: tuple[str, ...]

    @property
    def fps(self) -> float:
        """Frames processed per second."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def split_keywords(
    options: CutoutOptions | MaskOptions | VideoOptions | None, keywords: dict[str, Any]
) -> tuple[CutoutOptions, VideoOptions]:
    """The per-frame and the clip options from ``options`` plus inline keywords.

    Raises:
        UnsupportedOptionError: Unknown names, bad values, or options a video cannot honour.
    """
    video_kw = {k: keywords.pop(k) for k in list(keywords) if k in VideoOptions.names()}
    if isinstance(options, VideoOptions):
        vopts = dataclasses.replace(options, **video_kw) if video_kw else options
        frame_opts = CutoutOptions.build(None, **keywords)
    else:
        vopts = VideoOptions(**video_kw)
        frame_opts = CutoutOptions.build(options, **keywords)
    if frame_opts.trim:
        raise UnsupportedOptionError(
            "trim= would change the frame size from frame to frame; a video keeps its size. "
            "Leave trim out (crop the clip in your editor)."
        )
    return frame_opts, vopts


def remove_background(
    remover: Any,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    options: CutoutOptions | MaskOptions | VideoOptions | None = None,
    *,
    device: str | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    **keywords: Any,
) -> VideoResult:
    """Cut the subject out of every frame of ``src`` and write the clip to ``dst``.

    What :meth:`rmbg.BackgroundRemover.video` runs.

    Args:
        remover: The :class:`~rmbg.BackgroundRemover` to run.
        src: The input clip (any container and codec the bundled FFmpeg decodes).
        dst: The output file (``.webm``, ``.mov``, ``.mp4``) or folder (PNG frames). Written
            atomically: it appears complete, or not at all (an interrupted run leaves nothing).
        options: Per-frame :class:`~rmbg.options.CutoutOptions` (background, threshold,
            feather, grow, invert, refine_foreground, normalize) or :class:`VideoOptions`.
        device: Run the network on this device instead of the remover's.
        workers: Frames in flight at once (default: the engine's infer requests + 2).
        progress: Called after each frame with a :class:`VideoProgress` (frames/s, ETA).
        **keywords: Any field of :class:`~rmbg.options.CutoutOptions` or :class:`VideoOptions`,
            e.g. ``background="white"``, ``format="mask"``, ``smoothing=0``, ``quality=20``.

    Returns:
        A :class:`VideoResult`.

    Raises:
        UnsupportedOptionError: A bad option, or one the format cannot honour (``trim``, an
            ``.mp4`` without an opaque background), before anything is decoded.
        InvalidVideoError: No video stream, an unsupported codec, no frames, or a clip corrupt or
            truncated at a frame the message names.
        BackendUnavailableError: PyAV is not installed (``pip install "rmbg[video]"``).
        FileExistsError: ``dst`` exists and ``overwrite=False``.
    """
    frame_opts, vopts = split_keywords(options, dict(keywords))
    target = Path(dst)
    fmt = format_of(target, vopts.format)
    opaque = fmt != "mask" and frame_opts.opaque
    # validate the format against the options before opening anything (size checked later)
    choose_encoding(fmt, target, opaque=opaque, size=(2, 2), quality=vopts.quality)
    import_av()
    reader = Reader(src)
    try:
        return _run(remover, reader, target, fmt, opaque, frame_opts, vopts,
                    device=device, workers=workers, progress=progress)  # fmt: skip
    finally:
        reader.close()


def _run(
    remover: Any,
    reader: Reader,
    target: Path,
    fmt: Format,
    opaque: bool,
    frame_opts: CutoutOptions,
    vopts: VideoOptions,
    *,
    device: str | None,
    workers: int | None,
    progress: ProgressCallback | None,
) -> VideoResult:
    started = time.perf_counter()
    total = reader.estimated_frames()
    smoother = TemporalSmoother(vopts.smoothing)
    mask_opts = MaskOptions(normalize=frame_opts.normalize, exif_transpose=False)
    with atomic_target(target, folder=fmt == "png", overwrite=vopts.overwrite) as tmp:
        writer: Writer | None = None
        early_audio: list[Any] = []

        def on_audio(packet: Any) -> None:
            if writer is not None:
                writer.audio_packet(packet)
            elif vopts.audio:
                early_audio.append(packet)

        in_flight: collections.deque[Frame] = collections.deque()

        def images() -> Iterator[NDArray[np.uint8]]:
            for frame in reader.frames(on_audio):
                in_flight.append(frame)
                yield frame.rgb

        first: float | None = None
        timecodes: list[float | None] = []
        end: float | None = None
        start: float | None = None
        try:
            masks = remover.masks(images(), mask_opts, device=device, output="array",
                                  workers=workers)  # fmt: skip
            for raw in masks:
                frame = in_flight.popleft()
                if writer is None:
                    first = time.perf_counter()
                    stored = reader.size
                    encoding = choose_encoding(
                        fmt, target, opaque=opaque, size=stored, quality=vopts.quality
                    )
                    writer = Writer(tmp, encoding, reader, size=stored, audio=vopts.audio)
                    for packet in early_audio:
                        writer.audio_packet(packet)
                    early_audio.clear()
                out = _frame_result(frame, raw, smoother, frame_opts, writer.encoding.frame)
                writer.write(out, frame.pts, frame.duration, frame.index)
                timecodes.append(frame.seconds)
                if frame.seconds is not None:
                    start = frame.seconds if start is None else min(start, frame.seconds)
                    stop = frame.seconds + float(frame.duration * frame.time_base)
                    end = stop if end is None else max(end, stop)
                if progress is not None:
                    progress(VideoProgress(writer.frames, total, time.perf_counter() - started))
            if writer is None:  # pragma: no cover - the reader raises for a clip without frames
                raise AssertionError("no frames")
            writer.finish(timecodes)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    seconds = time.perf_counter() - started
    logger.info(
        "video: %d frames in %.1f s (%.2f frames/s, first frame after %.1f s) -> %s",
        writer.frames, seconds, writer.frames / seconds if seconds else 0.0,
        (first or started) - started, target,
    )  # fmt: skip
    return VideoResult(
        path=target,
        format=fmt,
        frames=writer.frames,
        size=writer.size,
        rotation=writer.rotation,
        duration=None if start is None or end is None else end - start,
        seconds=seconds,
        audio=tuple(writer.audio_note),
    )


def _frame_result(
    frame: Frame,
    raw: NDArray[np.uint8],
    smoother: TemporalSmoother,
    opts: CutoutOptions,
    kind: str,
) -> NDArray[np.uint8]:
    """One output frame (upright): the smoothed, shaped mask, or the cutout made with it."""
    mask = _compose.shape_mask(
        smoother(frame.rgb, raw),
        threshold=opts.threshold,
        feather=opts.feather,
        grow=opts.grow,
        invert=opts.invert,
    )
    if kind == "gray":
        return mask
    out = _compose.compose(
        frame.rgb, mask, background=opts.backdrop, refine_foreground=opts.refine_foreground
    )
    if kind == "rgba" and out.shape[2] == 3:  # an opaque background into an alpha format
        out = np.dstack([out, np.full(out.shape[:2], 255, np.uint8)])
    return out
