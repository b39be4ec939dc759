"""remover.video(): every output format decoded again against the library's own per-frame masks.

Clips are made here with PyAV (rmbg.video.synthetic: a bright disc gliding over a dark texture),
tiny and on the fake backend, so the whole file runs in seconds. Bounds, per output:

- PNG sequence, FFV1 mask (.mkv), ProRes 4444 alpha (16-bit alpha plane, read at 12 bits):
  lossless, the alpha equals the mask exactly;
- VP9 alpha (decoded with libvpx-vp9: FFmpeg's native VP9 decoder drops alpha), CRF 18:
  mean absolute error <= 1.5 grey levels, 99th percentile <= 10 (on the fake backend's textured
  masks, harder to code than a real subject's);
- H.264 mask (CRF 12, 4:4:4 at odd sizes): mean <= 1.5, 99th percentile <= 8;
- H.264 over a colour: mean <= 3 per channel.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import rmbg
from rmbg.errors import InvalidVideoError, UnsupportedOptionError
from rmbg.options import CutoutOptions
from rmbg.testing import fake_remover
from rmbg.video import VideoOptions, VideoProgress
from rmbg.video.smoothing import TemporalSmoother, flicker, lag
from rmbg.video.synthetic import make_clip


@pytest.fixture(scope="module")
def remover():
    return fake_remover(input_size=256)  # the fake network at 256 px: the plumbing is the same


class _Clips(dict):
    """Clips made on first use: ``clips["vfr"]`` (odd-sized, VFR, with audio) and
    ``clips["rotated"]`` (a phone clip with a 90° display rotation)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def __missing__(self, key: str):
        if key == "vfr":
            clip = make_clip(self.root / "vfr.mp4", size=(47, 35), frames=10, vfr=True, audio=True)
        else:
            from rmbg.video._streams import can_write_rotation

            if not can_write_rotation():  # CI runs PyAV 18+; 17 is the last for Python 3.10
                pytest.skip(f"PyAV {av.__version__} cannot write a rotated clip to test with")
            clip = make_clip(self.root / "phone.mp4", size=(36, 48), frames=6, rotation=90)
        self[key] = clip
        return clip


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return _Clips(tmp_path_factory.mktemp("clips"))


# -- helpers --------------------------------------------------------------------------------------
def decode(path: Path, decoder: str | None = None):
    """Frames (alpha kept) and the stream facts of a video file's first video stream."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {
            "time_base": v.time_base,
            "width": v.width,
            "height": v.height,
            "audio": [a.codec_context.name for a in c.streams.audio],
        }
        if decoder is None:
            frames = list(c.decode(v))
        else:  # e.g. libvpx-vp9, which reads the alpha side channel
            ctx = av.CodecContext.create(decoder, "r")
            frames = [f for p in c.demux(v) for f in ctx.decode(p)]
            for f in frames:  # a bare codec context does not know the stream's time base
                f.time_base = v.time_base
    return frames, info


def seconds(frames) -> list[Fraction]:
    """Timestamps relative to the first frame, exact."""
    t0 = frames[0].pts * frames[0].time_base
    return [f.pts * f.time_base - t0 for f in frames]


def upright_inputs(path: Path) -> list[np.ndarray]:
    frames, _ = decode(path)
    return [
        np.ascontiguousarray(np.rot90(f.to_ndarray(format="rgb24"), f.rotation // 90))
        for f in frames
    ]


def expected_masks(remover, path: Path, smoothing: float = 0.0) -> list[np.ndarray]:
    """The library's per-frame masks (upright), smoothed as the video path smooths them."""
    smoother = TemporalSmoother(smoothing)
    return [smoother(rgb, remover.mask(rgb)) for rgb in upright_inputs(path)]


def alpha_12bit(frame) -> np.ndarray:
    """The alpha plane of a yuva444p12le frame, scaled back to 8 bits."""
    plane = frame.planes[3]
    a = np.frombuffer(bytes(plane), np.uint16).reshape(frame.height, -1)[:, : frame.width]
    return np.rint(a.astype(np.float64) * 255 / 4095).astype(np.uint8)


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as c:
        samples = sum(f.samples for f in c.decode(c.streams.audio[0]))
        return samples / c.streams.audio[0].rate


# -- outputs --------------------------------------------------------------------------------------
def test_webm_vp9_alpha_matches_masks_with_timestamps_and_audio(remover, clips, tmp_path):
    clip = clips["vfr"]
    out = tmp_path / "cut.webm"
    result = remover.video(clip.path, out, smoothing=0)
    frames, info = decode(out, "libvpx-vp9")
    expected = expected_masks(remover, clip.path)
    assert result.frames == len(frames) == len(expected) == 10
    assert result.format == "webm"
    assert (info["width"], info["height"]) == (47, 35) == result.size
    assert all(f.format.name == "yuva420p" for f in frames)
    errors = np.concatenate(
        [
            np.abs(f.to_ndarray(format="rgba")[..., 3].astype(int) - m).ravel()
            for f, m in zip(frames, expected, strict=True)
        ]
    )
    assert errors.mean() <= 1.5
    assert np.percentile(errors, 99) <= 10
    # WebM keeps milliseconds: every VFR timestamp within 1 ms of the source's
    source, _ = decode(clip.path)
    for got, want in zip(seconds(frames), seconds(source), strict=True):
        assert abs(got - want) <= Fraction(1, 1000)
    assert info["audio"] == ["opus"]  # AAC cannot go into WebM: transcoded
    assert result.audio == ("aac transcoded to libopus",)
    assert abs(audio_seconds(out) - audio_seconds(clip.path)) < 0.03
    # the native decoder sees no alpha: why the docs say which players show it
    plain, _ = decode(out)
    assert plain[0].format.name == "yuv420p"


def test_prores_4444_alpha_is_lossless_and_audio_copied_bit_exact(remover, clips, tmp_path):
    clip = clips["vfr"]
    out = tmp_path / "cut.mov"
    result = remover.video(clip.path, out, smoothing=0)
    frames, info = decode(out)
    expected = expected_masks(remover, clip.path)
    assert len(frames) == len(expected) == result.frames
    assert frames[0].format.name.startswith("yuva444p")
    for f, m in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(alpha_12bit(f), m)
    source, _ = decode(clip.path)
    assert seconds(frames) == seconds(source)  # exact: MOV keeps the time base
    assert [f.duration * f.time_base for f in frames] == [f.duration * f.time_base for f in source]
    assert info["audio"] == ["aac"]
    assert audio_packets(out) == audio_packets(clip.path)


@pytest.mark.parametrize("fmt", ["mov", "mask"])
def test_prores_off_the_16px_grid_is_exact_and_the_same_every_run(remover, tmp_path, fmt):
    """prores_ks on slice threads wrote 4-10% of frames differently at widths that are not a
    multiple of 16 (a 1080-wide portrait clip; here 36): rows of alpha came out as 128."""
    clip = make_clip(tmp_path / "narrow.mp4", size=(36, 48), frames=120)
    runs = []
    for name in ("a.mov", "b.mov"):
        remover.video(clip.path, tmp_path / name, format=fmt, smoothing=0)
        frames, _ = decode(tmp_path / name)
        runs.append([[bytes(p) for p in f.planes] for f in frames])
    assert runs[0] == runs[1]  # colour too: the same picture every run
    if fmt == "mov":
        frames, _ = decode(tmp_path / "a.mov")
        for f, m in zip(frames, expected_masks(remover, clip.path), strict=True):
            np.testing.assert_array_equal(alpha_12bit(f), m)


def test_png_sequence_is_lossless_with_timecodes_and_audio(remover, clips, tmp_path):
    clip = clips["vfr"]
    out = tmp_path / "frames"
    result = remover.video(clip.path, out, smoothing=0)
    assert result.format == "png"
    names = sorted(p.name for p in out.glob("frame_*.png"))
    assert names == [f"frame_{i:06d}.png" for i in range(1, 11)]
    rgbs = upright_inputs(clip.path)
    from PIL import Image

    for name, rgb in zip(names, rgbs, strict=True):
        got = np.asarray(Image.open(out / name))
        mask = remover.mask(rgb)
        np.testing.assert_array_equal(got[..., 3], mask)
        keep = mask > 0
        np.testing.assert_array_equal(got[..., :3][keep], rgb[keep])
    lines = (out / "timecodes.txt").read_text().splitlines()
    assert lines[0] == "# timecode format v2"
    source, _ = decode(clip.path)
    want = [float(f.pts * f.time_base) * 1000 for f in source]
    assert [float(x) for x in lines[1:]] == pytest.approx(want, abs=1e-3)
    assert audio_packets(out / "audio.mka") == audio_packets(clip.path)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("frame_")) == [
        "audio.mka",
        "timecodes.txt",
    ]


def test_mask_videos_lossless_mkv_and_h264(remover, clips, tmp_path):
    clip = clips["vfr"]
    expected = expected_masks(remover, clip.path)
    source, _ = decode(clip.path)
    lossless = tmp_path / "mask.mkv"
    remover.video(clip.path, lossless, format="mask", smoothing=0)
    frames, _ = decode(lossless)
    assert len(frames) == len(expected)
    for f, m in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(f.to_ndarray(format="gray"), m)
    for got, want in zip(seconds(frames), seconds(source), strict=True):
        assert abs(got - want) <= Fraction(1, 1000)
    h264 = tmp_path / "mask.mp4"
    remover.video(clip.path, h264, format="mask", smoothing=0)
    frames, _ = decode(h264)
    assert len(frames) == len(expected)
    errors = np.concatenate(
        [
            np.abs(f.to_ndarray(format="gray").astype(int) - m).ravel()
            for f, m in zip(frames, expected, strict=True)
        ]
    )
    assert errors.mean() <= 1.5
    assert np.percentile(errors, 99) <= 8
    assert seconds(frames) == seconds(source)


def test_opaque_mp4_over_colour_odd_size(remover, clips, tmp_path):
    clip = clips["vfr"]
    out = tmp_path / "over.mp4"
    remover.video(clip.path, out, background="#2040c0", smoothing=0)
    frames, info = decode(out)
    assert (info["width"], info["height"]) == (47, 35)
    assert frames[0].format.name == "yuv444p"  # odd sizes cannot be 4:2:0
    for f, rgb in zip(frames, upright_inputs(clip.path), strict=True):
        want = remover.cutout(rgb, background="#2040c0")
        assert np.abs(f.to_ndarray(format="rgb24").astype(int) - want).mean() <= 3
    assert audio_packets(out) == audio_packets(clip.path)


def test_rotated_phone_clip_keeps_its_rotation(remover, clips, tmp_path):
    """Masks are made on the upright picture; the file keeps the stored pixels and the matrix."""
    clip = clips["rotated"]
    expected = expected_masks(remover, clip.path)
    assert expected[0].shape == (48, 36)  # upright
    out = tmp_path / "phone.mov"
    result = remover.video(clip.path, out, smoothing=0)
    assert (result.size, result.rotation) == ((48, 36), 90)
    frames, info = decode(out)
    assert (info["width"], info["height"]) == (48, 36)  # stored sideways, as the source
    assert all(f.rotation == 90 for f in frames)
    for f, m in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(np.rot90(alpha_12bit(f), 1), m)
    webm = tmp_path / "phone.webm"
    remover.video(clip.path, webm, smoothing=0)
    plain, _ = decode(webm)
    assert plain[0].rotation == 90
    folder = tmp_path / "phone"
    result = remover.video(clip.path, folder, smoothing=0)
    from PIL import Image

    assert Image.open(folder / "frame_000001.png").size == (36, 48)  # PNG frames are upright
    assert (result.size, result.rotation) == ((36, 48), 0)


def test_rotated_clip_written_upright_when_pyav_cannot_write_rotation(
    remover, clips, tmp_path, monkeypatch
):
    """PyAV before 18 (the last for Python 3.10 is 17) has no set_display_rotation."""
    from rmbg.video import _streams

    clip = clips["rotated"]  # made before PyAV is made to look old
    monkeypatch.setattr(_streams, "can_write_rotation", lambda: False)
    expected = expected_masks(remover, clip.path)
    out = tmp_path / "upright.mov"
    result = remover.video(clip.path, out, smoothing=0)
    assert (result.size, result.rotation) == ((36, 48), 0)
    frames, info = decode(out)
    assert (info["width"], info["height"]) == (36, 48)
    assert all(f.rotation == 0 for f in frames)
    for f, m in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(alpha_12bit(f), m)


def test_cutout_options_apply_per_frame(remover, clips, tmp_path):
    clip = clips["vfr"]
    out = tmp_path / "m.mkv"
    opts = CutoutOptions(threshold=0.5, grow=1, invert=True)
    remover.video(clip.path, out, opts, format="mask", smoothing=0)
    frames, _ = decode(out)
    for f, rgb in zip(frames, upright_inputs(clip.path), strict=True):
        np.testing.assert_array_equal(f.to_ndarray(format="gray"), remover.mask(rgb, opts))
    vopts = VideoOptions(format="mask", smoothing=0)
    remover.video(clip.path, out, vopts, threshold=0.5, grow=1, invert=True)
    again, _ = decode(out)
    for a, b in zip(frames, again, strict=True):
        np.testing.assert_array_equal(a.to_ndarray(format="gray"), b.to_ndarray(format="gray"))


# -- smoothing ------------------------------------------------------------------------------------
def test_smoothing_cuts_flicker_on_still_edges_without_dragging_moving_ones(remover, tmp_path):
    """A disc that first stands still (its edge flickers with the noise), then glides."""
    clip = make_clip(
        tmp_path / "noisy.mkv", size=(96, 64), frames=16, pause=6, noise=6, codec="ffv1"
    )
    frames = upright_inputs(clip.path)
    raw = [remover.mask(f) for f in frames]
    edge = np.zeros_like(clip.still)  # the still disc's rim during the pause
    grown = np.pad(clip.truth[0], 2)[2:-2, 2:-2]
    edge = grown ^ clip.truth[0] | (clip.truth[0] & ~np.roll(clip.truth[0], 2, axis=1))
    results = {}
    for strength in (0.0, 0.5, 0.8):
        smoother = TemporalSmoother(strength)
        smoothed = [smoother(f, m) for f, m in zip(frames, raw, strict=True)]
        results[strength] = (flicker(smoothed[:6], clip.still), flicker(smoothed[:6], edge),
                             lag(smoothed[6:], raw[6:], clip.swept()[6:]))  # fmt: skip
    assert results[0.0][2] == 0.0
    assert results[0.5][0] <= 0.7 * results[0.0][0]  # background flicker down by 30 % or more
    assert results[0.8][0] <= 0.5 * results[0.0][0]
    assert results[0.5][2] <= 2.0  # a moving edge trails by at most 2 grey levels on average
    # the video path applies exactly this smoother
    out = tmp_path / "s.mkv"
    remover.video(clip.path, out, format="mask", smoothing=0.5)
    got, _ = decode(out)
    smoother = TemporalSmoother(0.5)
    for f, rgb, m in zip(got, frames, raw, strict=True):
        np.testing.assert_array_equal(f.to_ndarray(format="gray"), smoother(rgb, m))


def test_smoother_basics():
    rgb = np.zeros((8, 8, 3), np.uint8)
    a, b = np.zeros((8, 8), np.uint8), np.full((8, 8), 200, np.uint8)
    assert TemporalSmoother(0)(rgb, b) is b
    s = TemporalSmoother(0.5)
    assert s(rgb, a).max() == 0
    assert int(s(rgb, b)[0, 0]) == 100  # still picture: halfway
    moved = np.full((8, 8, 3), 255, np.uint8)
    np.testing.assert_array_equal(s(moved, a), a)  # everything moved: no carry-over
    with pytest.raises(UnsupportedOptionError, match=r"smoothing must be in \[0, 1\)"):
        TemporalSmoother(1.0)


# -- progress, memory, atomicity ------------------------------------------------------------------
def test_progress_reports_fps_and_eta_and_memory_stays_bounded(
    remover, clips, tmp_path, monkeypatch
):
    from rmbg.video import _streams

    decoded = []
    original = _streams.Reader._frame

    def counting(self, frame):
        decoded.append(1)
        return original(self, frame)

    monkeypatch.setattr(_streams.Reader, "_frame", counting)
    seen: list[VideoProgress] = []
    in_flight: list[int] = []

    def progress(p: VideoProgress) -> None:
        seen.append(p)
        in_flight.append(len(decoded) - p.frames)

    remover.video(clips["vfr"].path, tmp_path / "p.webm", progress=progress, workers=2)
    assert [p.frames for p in seen] == list(range(1, 11))
    assert all(p.total == 10 for p in seen)
    assert seen[-1].fps > 0 and seen[-1].eta == 0
    assert seen[0].eta is not None and seen[0].eta > 0
    assert max(in_flight) <= 2 + 1  # frames decoded ahead of the writer: the workers, plus one


@pytest.mark.parametrize("target", ["cut.webm", "frames"])
def test_interrupt_leaves_target_untouched_and_no_temp(remover, clips, tmp_path, target):
    dst = tmp_path / target
    if target == "frames":  # an earlier run's output
        dst.mkdir()
        (dst / "frame_000001.png").write_text("old")
    else:
        dst.write_bytes(b"old")

    def stop(p: VideoProgress) -> None:
        if p.frames == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        remover.video(clips["vfr"].path, dst, progress=stop)
    if target == "frames":
        assert [p.name for p in dst.iterdir()] == ["frame_000001.png"]
        assert (dst / "frame_000001.png").read_text() == "old"
    else:
        assert dst.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target]  # no temporary left


FAKE_CLI = Path(__file__).with_name("fake_cli.py")  # the real CLI, with --backend fake offered


def rmbg_cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    (cwd / "m.onnx").touch()  # the fake backend takes any model file and runs no network
    return subprocess.Popen(
        [sys.executable, str(FAKE_CLI), "video", *args, "--model", "m.onnx", "--backend", "fake"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def test_cli_writes_the_clip_and_reports_json(clips, tmp_path):
    proc = rmbg_cli(str(clips["vfr"].path), "cut.mov", "--json", "--smoothing", "0", cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["frames"] == 10
    assert summary["format"] == "mov"
    assert summary["size"] == [47, 35]
    assert summary["audio"] == ["aac copied"]
    assert (tmp_path / "cut.mov").is_file()
    again = rmbg_cli(str(clips["vfr"].path), "cut.mov", cwd=tmp_path)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 1
    assert "exists; pass overwrite=True (CLI: --overwrite)" in err
    usage = rmbg_cli(str(clips["vfr"].path), "cut.mp4", cwd=tmp_path)
    _, err = usage.communicate(timeout=300)
    assert usage.returncode == 2
    assert "has no alpha channel: pass an opaque background" in err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_interrupted_mid_clip_leaves_nothing(clips, tmp_path, signum):
    """A signal while frames are being encoded: exit 128 + signal, no output, no temporary."""
    proc = rmbg_cli(
        str(clips["vfr"].path), "cut.mov", "--backend-option", "delay=0.2", cwd=tmp_path
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the temporary file has frames in it
        partial = [p for p in tmp_path.glob(".cut.mov.*/*") if p.stat().st_size > 0]
        if partial or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be interrupted"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_overwrite_false_refuses_and_a_foreign_folder_is_never_replaced(remover, clips, tmp_path):
    dst = tmp_path / "a.webm"
    dst.write_bytes(b"x")
    with pytest.raises(FileExistsError, match="overwrite"):
        remover.video(clips["vfr"].path, dst, overwrite=False)
    assert dst.read_bytes() == b"x"
    home = tmp_path / "Desktop"  # a folder target that holds the user's files
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"other files in it \(notes.txt"):
        remover.video(clips["vfr"].path, home)
    assert [p.name for p in home.iterdir()] == ["notes.txt"]
    previous = tmp_path / "frames"  # an earlier sequence is replaced whole
    remover.video(clips["vfr"].path, previous, smoothing=0)
    (previous / "frame_000099.png").write_bytes(b"stale")
    remover.video(clips["vfr"].path, previous, smoothing=0)
    assert not (previous / "frame_000099.png").exists()
    assert len(list(previous.glob("frame_*.png"))) == 10


# -- bad inputs and options -----------------------------------------------------------------------
def test_option_errors_before_decoding(remover, clips, tmp_path):
    src = clips["vfr"].path
    with pytest.raises(UnsupportedOptionError, match=r"MP4 .* has no alpha"):
        remover.video(src, tmp_path / "x.mp4")
    with pytest.raises(UnsupportedOptionError, match="trim"):
        remover.video(src, tmp_path / "x.webm", trim=True)
    with pytest.raises(UnsupportedOptionError, match="format='gif' is not one of"):
        remover.video(src, tmp_path / "x.webm", format="gif")
    with pytest.raises(UnsupportedOptionError, match="Cannot tell the output format"):
        remover.video(src, tmp_path / "x.avi")
    with pytest.raises(UnsupportedOptionError, match="smoothing"):
        remover.video(src, tmp_path / "x.webm", smoothing=2)
    with pytest.raises(UnsupportedOptionError, match="Unknown cutout option"):
        remover.video(src, tmp_path / "x.webm", sharpen=True)
    assert list(tmp_path.iterdir()) == []


def test_input_errors_have_their_own_messages(remover, clips, tmp_path):
    out = tmp_path / "o.webm"
    with pytest.raises(InvalidVideoError, match="no such file"):
        remover.video(tmp_path / "missing.mp4", out)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 50)
    with pytest.raises(InvalidVideoError, match="not a video FFmpeg can read"):
        remover.video(junk, out)
    # audio only
    song = tmp_path / "tone.m4a"
    with av.open(str(song), "w") as c:
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        f = av.AudioFrame.from_ndarray(np.zeros((1, 4800), np.float32), format="flt", layout="mono")
        f.sample_rate, f.pts = 48000, 0
        c.mux(a.encode(f))
        c.mux(a.encode(None))
    with pytest.raises(InvalidVideoError, match=r"no video stream .*audio"):
        remover.video(song, out)
    # a codec this FFmpeg has no decoder for: a VP9 clip whose Matroska codec id is renamed
    vp9 = make_clip(tmp_path / "v.mkv", codec="libvpx-vp9", frames=3)
    data = vp9.path.read_bytes()
    assert data.count(b"V_VP9") == 1
    unknown = tmp_path / "unknown.mkv"
    unknown.write_bytes(data.replace(b"V_VP9", b"V_QQQ"))
    with pytest.raises(InvalidVideoError, match="codec is not supported"):
        remover.video(unknown, out)
    # a video stream without a single decodable frame: every frame's data zeroed
    blank = tmp_path / "blank.mkv"
    clip = make_clip(tmp_path / "b.mkv", codec="ffv1", frames=3)
    with av.open(str(clip.path)) as src, av.open(str(blank), "w") as dst:
        s = dst.add_stream_from_template(src.streams.video[0])
        for p in src.demux(src.streams.video[0]):
            if p.size:
                q = av.Packet(b"")
                q.pts, q.dts, q.time_base, q.stream = p.pts, p.dts, p.time_base, s
                dst.mux(q)
    with pytest.raises(InvalidVideoError, match="no frames"):
        remover.video(blank, out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_truncated_clip_names_the_frame(remover, tmp_path, suffix):
    clip = make_clip(
        tmp_path / f"whole{suffix}",
        size=(64, 48),
        frames=20,
        codec="libx264" if suffix == ".mp4" else "ffv1",
    )
    data = clip.path.read_bytes()
    if suffix == ".mp4":  # index first (faststart) so that a cut file still opens
        fast = tmp_path / "fast.mp4"
        with (
            av.open(str(clip.path)) as src,
            av.open(str(fast), "w", options={"movflags": "faststart"}) as dst,
        ):
            s = dst.add_stream_from_template(src.streams.video[0])
            for p in src.demux(src.streams.video[0]):
                if p.size:
                    p.stream = s
                    dst.mux(p)
        data = fast.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) * 6 // 10])
    out = tmp_path / "o.webm"
    with pytest.raises(
        InvalidVideoError, match=r"corrupt or truncated: decoding stopped at frame \d+ of about 20"
    ):
        remover.video(cut, out)
    assert not out.exists()


def test_audio_longer_than_the_video_is_not_truncation(remover, tmp_path):
    clip = make_clip(tmp_path / "tail.mkv", codec="ffv1", frames=5, audio=True, audio_tail=1.0)
    result = remover.video(clip.path, tmp_path / "o.mov", smoothing=0)
    assert result.frames == 5
    assert audio_seconds(tmp_path / "o.mov") == pytest.approx(audio_seconds(clip.path), abs=0.03)


def test_import_rmbg_does_not_import_av():
    code = (
        "import rmbg, sys; rmbg.BackgroundRemover; import rmbg.options; print('av' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
    assert out.stdout.strip() == "False"
    assert issubclass(rmbg.InvalidVideoError, rmbg.InvalidImageError)
    assert "InvalidVideoError" in rmbg.__all__


# -- real weights ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.realweights
def test_real_network_video_matches_per_frame_masks(standin_dir, tmp_path):
    remover = rmbg.BackgroundRemover(standin_dir, precision="f32", device="CPU")  # as test_batch
    clip = make_clip(tmp_path / "c.mp4", size=(80, 60), frames=3, vfr=True, audio=True)
    out = tmp_path / "real.mov"
    result = remover.video(clip.path, out, smoothing=0)
    frames, info = decode(out)
    assert result.frames == len(frames) == 3
    for f, rgb in zip(frames, upright_inputs(clip.path), strict=True):
        np.testing.assert_array_equal(alpha_12bit(f), remover.mask(rgb))
    assert info["audio"] == ["aac"]
