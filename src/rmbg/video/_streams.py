"""Decoding and encoding with PyAV: frames in with their timestamps, frames and audio out.

Nothing here knows about masks: :mod:`rmbg.video` hands the reader's frames to the remover and
the results to the writer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._png import encode_png
from ..errors import BackendUnavailableError, InvalidVideoError
from ._formats import Encoding

__all__ = ["Frame", "Reader", "Writer", "atomic_target", "can_write_rotation", "import_av"]

logger = logging.getLogger("rmbg")


def import_av() -> Any:
    """PyAV, or an error saying which extra installs it."""
    try:
        import av
    except ImportError as exc:
        raise BackendUnavailableError(
            'Video needs PyAV (its wheels bundle FFmpeg): pip install "rmbg[video]"'
        ) from exc
    return av


def can_write_rotation() -> bool:
    """Whether this PyAV can write a display rotation (``VideoStream.set_display_rotation``,
    PyAV 18+); older ones get upright frames instead."""
    return hasattr(import_av().video.stream.VideoStream, "set_display_rotation")


@dataclasses.dataclass(frozen=True)
class Frame:
    """One decoded frame: upright RGB pixels and where it sits in time.

    Attributes:
        index: 0-based position in the clip.
        rgb: ``HxWx3`` uint8, rotated upright by the clip's display rotation.
        pts: Presentation timestamp in ``time_base`` units (``None`` if the clip has none).
        duration: Frame duration in ``time_base`` units (0 if unknown).
        time_base: The stream's time base.
    """

    index: int
    rgb: NDArray[np.uint8]
    pts: int | None
    duration: int
    time_base: Fraction

    @property
    def seconds(self) -> float | None:
        """The timestamp in seconds."""
        return None if self.pts is None else float(self.pts * self.time_base)


class Reader:
    """An input clip: its first video stream decoded in order, its audio packets passed on.

    Raises:
        InvalidVideoError: Not a media file, no video stream, or a codec FFmpeg cannot decode.
    """

    def __init__(self, src: str | os.PathLike[str]) -> None:
        av = import_av()
        self.path = Path(src)
        if not self.path.is_file():
            raise InvalidVideoError(f"{self.path}: no such file.")
        try:
            self.container = av.open(str(self.path), "r")
        except (av.FFmpegError, IndexError, ValueError) as exc:
            raise InvalidVideoError(
                f"{self.path} is not a video FFmpeg can read ({exc}); is it complete?"
            ) from exc
        try:
            self._check()
        except BaseException:
            self.container.close()
            raise
        self.video = self._videos()[0]
        self.audio = list(self.container.streams.audio)
        self.time_base: Fraction = self.video.time_base or Fraction(1, 90000)
        self.rate: Fraction | None = self.video.average_rate or self.video.guessed_rate
        self.rotation = 0
        self.frames_decoded = 0

    def _videos(self) -> list[Any]:
        """Video streams that are not a still picture attached to the file (cover art)."""
        attached = import_av().stream.Disposition.attached_pic
        return [s for s in self.container.streams.video if not s.disposition & attached]

    def _check(self) -> None:
        streams = self.container.streams
        videos = self._videos()
        if not videos:
            kinds = ", ".join(sorted({s.type for s in streams})) or "none"
            art = " and cover art" if streams.video else ""
            raise InvalidVideoError(
                f"{self.path} has no video stream (streams: {kinds}{art}); pass a video file."
            )
        video = videos[0]
        if video.codec_context is None:
            raise InvalidVideoError(
                f"{self.path}: the video codec is not supported by this FFmpeg (PyAV "
                f"{import_av().__version__}); convert the clip first, e.g. to H.264 or VP9."
            )
        video.thread_type = "AUTO"

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` as stored (before rotation)."""
        return (int(self.video.width), int(self.video.height))

    @property
    def duration(self) -> float | None:
        """The video stream's duration in seconds from the header, if it says.

        The stream's own duration, else Matroska's per-stream ``DURATION`` tag, else the
        container's when the video is its only stream (audio may run longer than the video).
        """
        if self.video.duration:
            return float(self.video.duration * self.time_base)
        tag = self.video.metadata.get("DURATION") or self.video.metadata.get("duration")
        if tag:
            try:
                h, m, sec = str(tag).split(":")
                return int(h) * 3600 + int(m) * 60 + float(sec)
            except ValueError:
                pass
        if self.container.duration and len(self.container.streams) == 1:
            return float(self.container.duration) / 1_000_000
        return None

    def estimated_frames(self) -> int | None:
        """The frame count from the header (or duration x rate), for progress and checks."""
        if self.video.frames:
            return int(self.video.frames)
        duration = self.duration
        if duration and self.rate:
            return max(1, round(duration * float(self.rate)))
        return None

    def frames(self, on_audio: Callable[[Any], None]) -> Iterator[Frame]:
        """Decode the video in order; every audio packet goes to ``on_audio`` as it is demuxed.

        Raises:
            InvalidVideoError: Decoding failed (corrupt data, truncated file): names the frame.
        """
        av = import_av()
        wanted = [self.video, *self.audio]
        demux = self.container.demux(*wanted)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.FFmpegError as exc:
                raise self._broken(exc) from exc
            if packet.stream.type == "audio":
                if packet.dts is not None and packet.size:
                    on_audio(packet)
                continue
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                raise self._broken(exc) from exc
            for frame in decoded:
                yield self._frame(frame)
        if self.frames_decoded == 0:
            raise InvalidVideoError(
                f"{self.path} has a video stream but no frames could be decoded from it; the file "
                "may be empty or cut short."
            )
        self._check_complete()

    def _frame(self, frame: Any) -> Frame:
        if self.frames_decoded == 0:
            self.rotation = int(frame.rotation or 0)
            if self.rotation % 90:
                logger.warning(
                    "%s: display rotation %d° is not a multiple of 90°: ignored",
                    self.path, self.rotation,
                )  # fmt: skip
                self.rotation = 0
        rgb = frame.to_ndarray(format="rgb24")
        k = (self.rotation // 90) % 4
        if k:
            rgb = np.ascontiguousarray(np.rot90(rgb, k))
        index = self.frames_decoded
        self.frames_decoded += 1
        pts = frame.pts
        duration = int(frame.duration or 0)
        self._last_end = None if pts is None else pts + duration
        return Frame(index, rgb, pts, duration, self.time_base)

    def _broken(self, exc: BaseException) -> InvalidVideoError:
        n = self.frames_decoded
        total = self.estimated_frames()
        of = f" of about {total}" if total else ""
        return InvalidVideoError(
            f"{self.path} is corrupt or truncated: decoding stopped at frame {n}{of} "
            f"(0-based; {n} frames were read) with: {exc}"
        )

    def _check_complete(self) -> None:
        """A clip whose header promises more than was decoded was cut short."""
        n = self.frames_decoded
        total = int(self.video.frames or 0)
        if total and n < total - 1:
            raise self._broken(EOFError(f"the header announces {total} frames"))
        duration = self.duration
        end = getattr(self, "_last_end", None)
        start = self.video.start_time or 0
        if not total and duration and end is not None and self.rate:
            decoded = float((end - start) * self.time_base)
            if decoded < duration - 2.0 / float(self.rate) - 0.1:
                raise self._broken(
                    EOFError(
                        f"the stream ends at {decoded:.3f} s of the {duration:.3f} s announced"
                    )
                )

    def close(self) -> None:
        self.container.close()


class Writer:
    """The output: a video file (with audio copied or transcoded), or a folder of PNG frames.

    Created once the first frame is known (its size and the clip's rotation); audio packets
    demuxed before then are held and written first.
    """

    def __init__(
        self,
        target: Path,
        encoding: Encoding,
        reader: Reader,
        *,
        size: tuple[int, int],
        audio: bool,
        png_level: int = 1,
    ) -> None:
        av = import_av()
        self.av = av
        self.encoding = encoding
        self.target = target
        self.png_level = png_level
        self.timecodes: list[str] = []
        self.frames = 0
        self._durations: dict[int, int] = {}
        self._audio_map: dict[int, tuple[Any, Any]] = {}  # input index -> (out stream, decoder?)
        self.audio_note: list[str] = []
        self.container: Any = None
        self.stream: Any = None
        # the display rotation written with the frames stored as the input stores them; 0 when
        # the frames are written upright instead (PNG files, or a PyAV that cannot write it)
        keep = encoding.container is not None and can_write_rotation()
        self.rotation = reader.rotation if keep else 0
        quarter = (reader.rotation // 90) % 2 == 1 and not keep
        self.size = (size[1], size[0]) if quarter else size
        if reader.rotation and not keep and encoding.container is not None:
            logger.info(
                "PyAV %s cannot write a display rotation (PyAV 18 can): frames written upright",
                av.__version__,
            )
        if encoding.container is None:  # PNG sequence: frames are files, audio goes beside them
            target.mkdir()
            if audio and reader.audio:
                self.container = av.open(str(target / "audio.mka"), "w", format="matroska")
                self._add_audio(reader)
            return
        self.container = av.open(str(target), "w", format=encoding.container)
        width, height = self.size
        stream = self.container.add_stream(encoding.codec, options=dict(encoding.options))
        stream.width, stream.height = width, height
        stream.pix_fmt = encoding.pix_fmt
        stream.time_base = reader.time_base
        stream.codec_context.time_base = reader.time_base
        if reader.rate:
            stream.codec_context.framerate = reader.rate
        if self.rotation:
            stream.set_display_rotation(self.rotation)
        # prores_ks with slice threads writes a different picture run to run when the width is
        # not a multiple of its 16-pixel macroblock (FFmpeg 8.1 in PyAV 18.1: 4-10% of frames,
        # alpha included, e.g. every 1080-wide portrait clip): such frames are encoded on one
        # thread, so the lossless alpha stays lossless
        racy = encoding.codec == "prores_ks" and width % 16
        stream.thread_type = "NONE" if racy else "AUTO"
        self.stream = stream
        if audio:
            self._add_audio(reader)

    # -- audio ------------------------------------------------------------------------------------
    def _add_audio(self, reader: Reader) -> None:
        allowed = self.encoding.audio_codecs
        for a in reader.audio:
            name = a.codec_context.name if a.codec_context is not None else None
            if name is None:
                self.audio_note.append(f"audio stream {a.index}: unknown codec, dropped")
                continue
            if allowed is None or name in allowed:
                out = self.container.add_stream_from_template(a)
                self._audio_map[a.index] = (out, None)
                self.audio_note.append(f"{name} copied")
            elif self.encoding.audio_encoder is not None:
                out = self.container.add_stream(self.encoding.audio_encoder, rate=48000)
                out.layout = "stereo" if a.codec_context.channels != 1 else "mono"
                self._audio_map[a.index] = (out, a.codec_context)
                self.audio_note.append(f"{name} transcoded to {self.encoding.audio_encoder}")
            else:
                self.audio_note.append(f"{name} dropped (the container cannot hold it)")
        for note in self.audio_note:
            logger.info("audio: %s", note)

    def audio_packet(self, packet: Any) -> None:
        """Copy or transcode one demuxed audio packet."""
        entry = self._audio_map.get(packet.stream.index)
        if entry is None:
            return
        out, decoder = entry
        if decoder is None:
            packet.stream = out
            self.container.mux(packet)
            return
        for frame in decoder.decode(packet):
            frame.pts = None  # the encoder numbers samples itself, at its own rate
            self.container.mux(out.encode(frame))

    # -- video ------------------------------------------------------------------------------------
    def write(self, image: NDArray[np.uint8], pts: int | None, duration: int, index: int) -> None:
        """Encode one frame (upright; rotated back to the stored orientation here)."""
        if self.encoding.container is None:
            name = f"frame_{index + 1:06d}.png"
            (self.target / name).write_bytes(encode_png(image, level=self.png_level))
            self.timecodes.append(name)
            self.frames += 1
            return
        k = (self.rotation // 90) % 4
        if k:
            image = np.ascontiguousarray(np.rot90(image, -k))
        fmt = {"rgba": "rgba", "rgb": "rgb24", "gray": "gray"}[self.encoding.frame]
        frame = self.av.VideoFrame.from_ndarray(image, format=fmt)
        frame.pts = pts if pts is not None else index
        frame.time_base = self.stream.codec_context.time_base
        if duration:
            self._durations[frame.pts] = duration
        self._mux_video(self.stream.encode(frame))
        self.frames += 1

    def _mux_video(self, packets: list[Any]) -> None:
        for p in packets:
            d = self._durations.pop(p.pts, None) if p.pts is not None else None
            if d:
                p.duration = d  # the frame's own, so the last frame (and VFR) keep theirs
            self.container.mux(p)

    def finish(self, timecodes: list[float | None]) -> None:
        """Flush the encoders and close the file (still at its temporary path)."""
        if self.stream is not None:
            self._mux_video(self.stream.encode(None))
        for out, decoder in self._audio_map.values():
            if decoder is not None:
                with contextlib.suppress(self.av.FFmpegError):
                    for frame in decoder.decode(None):
                        frame.pts = None
                        self.container.mux(out.encode(frame))
                self.container.mux(out.encode(None))
        if self.container is not None:
            self.container.close()
            self.container = None
        if self.encoding.container is None:
            lines = ["# timecode format v2"]
            lines += [f"{1000 * t:.3f}" if t is not None else "" for t in timecodes]
            (self.target / "timecodes.txt").write_text("\n".join(lines) + "\n")

    def abort(self) -> None:
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.close()
            self.container = None


@contextlib.contextmanager
def atomic_target(dst: Path, *, folder: bool, overwrite: bool) -> Iterator[Path]:
    """A temporary path beside ``dst`` that becomes ``dst`` only if the block completes.

    A file is renamed over ``dst`` with ``os.replace``. A folder (a PNG sequence) is swapped in:
    an existing ``dst`` is renamed aside, the new folder renamed into place, then the old one
    removed, so that ``dst`` is never a half-written folder. On any exception, Ctrl-C included,
    the temporary output is removed and ``dst`` is left as it was.

    Raises:
        FileExistsError: ``dst`` exists and ``overwrite`` is false.
    """
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    if dst.exists() and folder != dst.is_dir():
        what = "a file" if folder else "a folder"
        raise FileExistsError(f"{dst} exists and is not {what}; remove it or choose another name")
    if folder and dst.is_dir():
        others = [p.name for p in dst.iterdir() if not _is_sequence_file(p.name)]
        if others:  # never delete what rmbg did not write
            raise FileExistsError(
                f"{dst} is a folder with other files in it ({', '.join(sorted(others)[:3])}...); "
                "a PNG sequence replaces its folder whole: choose a new or empty folder"
            )
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".rmbg-tmp", dir=dst.parent))
    tmp = tmpdir / ("frames" if folder else f"out{dst.suffix}")
    try:
        yield tmp
        if folder:
            old = tmpdir / "old"
            if dst.exists():
                os.replace(dst, old)
            os.replace(tmp, dst)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, dst)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _is_sequence_file(name: str) -> bool:
    """A file a PNG sequence output consists of."""
    return name in ("timecodes.txt", "audio.mka") or (
        name.startswith("frame_") and name.endswith(".png")
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
