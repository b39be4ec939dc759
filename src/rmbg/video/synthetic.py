"""Synthetic clips whose subject is known: for tests, benchmarks and trying formats out.

A bright coloured disc glides over a dark textured background (plus, optionally, sensor noise),
so the true mask of every frame is known and :func:`rmbg.video.smoothing.flicker` /
:func:`~rmbg.video.smoothing.lag` can be measured. The clip can have a variable frame rate, odd
sizes, a display rotation (a phone held upright) and an audio track.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..errors import UnsupportedOptionError
from ._streams import can_write_rotation, import_av

__all__ = ["Clip", "make_clip"]


@dataclasses.dataclass(frozen=True)
class Clip:
    """What :func:`make_clip` wrote.

    Attributes:
        path: The file.
        truth: Per frame, the ``HxW`` bool mask of the disc, upright (as displayed).
        pts: Per frame, the timestamp in ``time_base`` units.
        time_base: The video stream's time base.
        still: Pixels the disc never covers, upright.
    """

    path: Path
    truth: list[NDArray[np.bool_]]
    pts: list[int]
    time_base: Fraction
    still: NDArray[np.bool_]

    def swept(self) -> list[NDArray[np.bool_]]:
        """Per frame, the pixels the disc entered or left since the previous frame."""
        empty = np.zeros_like(self.truth[0])
        return [empty] + [a ^ b for a, b in itertools.pairwise(self.truth)]


def make_clip(
    path: str | os.PathLike[str],
    *,
    size: tuple[int, int] = (64, 48),
    frames: int = 12,
    fps: int = 25,
    vfr: bool = False,
    rotation: int = 0,
    audio: bool = False,
    noise: float = 0.0,
    pause: int = 0,
    seed: int = 0,
    codec: str = "libx264",
    audio_tail: float = 0.0,
    speed: float | None = None,
) -> Clip:
    """Write a clip of a disc moving left to right over a textured background.

    Args:
        path: Output file (``.mp4``/``.mov`` for rotation; ``.mkv``/``.webm`` work too).
        size: ``(width, height)`` as displayed (upright).
        frames: Number of frames.
        fps: Nominal frame rate.
        vfr: Alternate frame durations of 1 and 2 ticks of ``1/fps`` (variable frame rate).
        rotation: Display rotation (90, 180, 270: counter-clockwise); pixels are stored rotated
            the other way, as a phone writes them.
        audio: Add a mono AAC (Opus in WebM) 440 Hz tone as long as the video.
        noise: Standard deviation of Gaussian noise added to every frame (grey levels).
        pause: The disc stands still for this many frames at the start (a still subject).
        seed: Seed of the texture and the noise.
        codec: Video encoder (``libx264`` writes 4:4:4 so odd sizes work; ``ffv1``, ``libvpx-vp9``).
        audio_tail: Seconds the audio runs on after the last frame.
        speed: Pixels per frame the disc moves (default: it crosses the frame in the clip).
    """
    av = import_av()
    path = Path(path)
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    texture = 40 + 30 * np.sin(xx / 3.0) * np.cos(yy / 4.0) + rng.normal(0, 8, (height, width))
    background = np.clip(np.dstack([texture, texture * 0.8, texture * 1.2]), 0, 110)
    radius = max(3.0, min(width, height) / 5)
    tick = Fraction(1, fps)
    time_base = Fraction(1, fps * 2 * 30)
    truth: list[NDArray[np.bool_]] = []
    stamps: list[int] = []
    k = (rotation // 90) % 4
    suffix = path.suffix.lower()
    with av.open(str(path), "w") as out:
        stored_w, stored_h = (height, width) if k % 2 else (width, height)
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = stored_w, stored_h
        stream.pix_fmt = "yuv444p" if codec == "libx264" else "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "4", "preset": "ultrafast"}
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if rotation:
            if not can_write_rotation():
                raise UnsupportedOptionError(
                    f"PyAV {av.__version__} cannot write a display rotation; PyAV 18 can."
                )
            stream.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = out.add_stream("libopus" if suffix == ".webm" else "aac", rate=48000)
            sound.layout = "mono"
        t = Fraction(0)
        travel = max(1, frames - 1 - pause)
        for i in range(frames):
            step = max(0, i - pause)
            if speed is None:
                cx = radius + (width - 2 * radius) * step / travel
                cy = height / 2 + height / 8 * np.sin(step / 2)
            else:
                cx, cy = min(width - radius, radius + speed * step), height / 2
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
            img = background.copy()
            img[disc] = (250, 200, 40)
            if noise:
                img = img + rng.normal(0, noise, img.shape)
            pixels = np.clip(np.rint(img), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(np.rot90(pixels, -k)), format="rgb24"
            )
            pts = int(t / time_base)
            frame.pts, frame.time_base = pts, time_base
            truth.append(disc)
            stamps.append(pts)
            t += tick * (2 if vfr and i % 2 else 1)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if sound is not None:
            rate = 48000
            n = int((t + Fraction(audio_tail)) * rate)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.float32)
            chunk = 4800
            for start in range(0, n, chunk):
                samples = tone[None, start : start + chunk]
                aframe = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
                aframe.sample_rate = rate
                aframe.pts, aframe.time_base = start, Fraction(1, rate)
                out.mux(sound.encode(aframe))
            out.mux(sound.encode(None))
    still = ~np.logical_or.reduce(truth)
    return Clip(path, truth, stamps, time_base, still)
