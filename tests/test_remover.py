"""The BackgroundRemover facade, on the dependency-free fake backend (real I/O and numpy stages)."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from rmbg import BackgroundRemover
from rmbg.errors import DeviceNotFoundError, UnknownBackendError, UnsupportedOptionError
from rmbg.postprocess import postprocess
from rmbg.preprocess import preprocess
from rmbg.testing import FAKE_SOURCE, fake_remover

from .helpers import load_photo, visible


@pytest.fixture
def remover() -> BackgroundRemover:
    return fake_remover()


def test_mask_is_the_shared_pipeline_applied_to_the_engine_output(remover):
    rgb = load_photo("coffee")
    engine = remover.engine()
    expected = postprocess(engine(preprocess(rgb)), rgb.shape[:2])
    np.testing.assert_array_equal(remover.mask(rgb), expected)


def test_output_types_follow_the_input(remover, tmp_path):
    rgb = load_photo("chelsea")
    arr_mask = remover.mask(rgb)
    assert (
        isinstance(arr_mask, np.ndarray)
        and arr_mask.shape == rgb.shape[:2]
        and arr_mask.dtype == np.uint8
    )
    cut = remover.cutout(rgb)
    assert cut.shape == (*rgb.shape[:2], 4) and cut.dtype == np.uint8
    np.testing.assert_array_equal(cut[..., :3], visible(rgb, arr_mask))
    np.testing.assert_array_equal(cut[..., 3], arr_mask)

    pil = Image.fromarray(rgb)
    pm = remover.mask(pil)
    assert isinstance(pm, Image.Image) and pm.mode == "L" and pm.size == pil.size
    pc = remover.cutout(pil)
    assert isinstance(pc, Image.Image) and pc.mode == "RGBA" and pc.size == pil.size

    path = tmp_path / "c.png"
    pil.save(path)
    assert remover.cutout(path).mode == "RGBA"
    assert remover.mask(str(path)).mode == "L"
    np.testing.assert_array_equal(np.asarray(remover.mask(path)), arr_mask)


def test_device_override_compiles_once_per_device(remover):
    rgb = load_photo("rocket")
    backend = remover._backend
    remover.mask(rgb)
    remover.mask(rgb, device="FAKE")
    remover.mask(rgb, device="fake")
    remover.cutout(rgb, device="cpu")
    assert sorted(backend.loads) == ["cpu", "fake"]
    assert remover.engine("Fake") is remover.engine("fake")


def test_missing_device_is_an_error_listing_the_available_ones(remover):
    with pytest.raises(DeviceNotFoundError, match="Available: cpu, fake"):
        remover.mask(load_photo("rocket"), device="gpu")
    with pytest.raises(DeviceNotFoundError):
        fake_remover(device="npu")


def test_unknown_backend_and_precision():
    with pytest.raises(UnknownBackendError):
        BackgroundRemover(FAKE_SOURCE, backend="nope")
    with pytest.raises(UnsupportedOptionError, match="precision"):
        BackgroundRemover(FAKE_SOURCE, backend="fake", precision="f64")


def test_info_reports_what_runs(remover):
    info = remover.info
    assert (info.backend, info.device, info.execution_devices, info.inference_precision) == (
        "fake",
        "cpu",
        ("cpu",),
        "f32",
    )
    assert "fake" in repr(remover)


def test_concurrent_calls_from_many_threads_are_correct(remover):
    images = [load_photo(n) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    expected = [remover.mask(im) for im in images]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            results[k] = remover.mask(images[k % 4], device=("cpu", "fake")[k % 2])
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(16):
        np.testing.assert_array_equal(results[k], expected[k % 4])
    assert sorted(remover._backend.loads) == ["cpu", "fake"]


def test_caller_array_is_not_mutated(remover):
    rgb = np.array(load_photo("coffee"))
    before = rgb.copy()
    remover.cutout(rgb)
    remover.mask(rgb)
    np.testing.assert_array_equal(rgb, before)


def test_model_env_var_is_the_default(monkeypatch, tmp_path):
    """RMBG_MODEL names the model when none is passed (the Hub default cannot be reached offline,
    so a test that only expects an error would pass if the variable were ignored)."""
    import numpy as np
    from safetensors.numpy import save_file

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    save_file(
        {"conv_in.weight": np.zeros((2, 2), np.float32)}, str(checkpoint / "model.safetensors")
    )
    monkeypatch.setenv("RMBG_MODEL", str(checkpoint))
    remover = BackgroundRemover(backend="fake")
    assert remover.source.kind == "checkpoint" and remover.source.path == checkpoint
    assert BackgroundRemover(tmp_path / "checkpoint", backend="fake").source == remover.source
    monkeypatch.setenv("RMBG_MODEL", str(tmp_path / "does-not-exist"))
    from rmbg.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="does-not-exist"):
        BackgroundRemover(backend="fake")


def test_cutout_keeps_the_inputs_own_colours_and_transparency(remover):
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 1] = np.arange(60, dtype=np.uint8)[None, :]
    rgba[..., 3] = 255
    rgba[:, :20, 3] = 0  # fully transparent strip
    rgba[:, 20:30, 3] = 100  # translucent strip
    cut = remover.cutout(rgba)
    mask = remover.mask(rgba)
    from rmbg.compose import combined_alpha

    # not the white-flattened view (and cleared where the cutout is fully transparent)
    np.testing.assert_array_equal(cut[..., :3], visible(rgba[..., :3], cut[..., 3]))
    np.testing.assert_array_equal(cut[..., 3], combined_alpha(mask, rgba[..., 3]))
    assert (cut[:, :20, 3] == 0).all()  # transparent input pixels stay transparent
    assert (cut[:, 20:30, 3] <= 100).all()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"background": "#0a0", "feather": 1.5},
        {"trim": True, "margin": 4, "threshold": 0.5, "invert": True},
    ],
)
def test_cutout_and_mask_of_one_run_with_stage_times(remover, options):
    """cutout_and_mask() = cutout() + mask() with the same options, from one network run."""
    rgba = np.dstack([load_photo("coffee"), np.full(load_photo("coffee").shape[:2], 200, np.uint8)])
    rgba[:40, :60, 3] = 0  # the input's own transparency survives into the cutout
    before = remover.engine().calls
    result = remover.cutout_and_mask(rgba, **options)
    assert remover.engine().calls == before + 1
    np.testing.assert_array_equal(result.cutout, remover.cutout(rgba, **options))
    mask_options = {k: v for k, v in options.items() if k in ("feather", "threshold", "invert")}
    np.testing.assert_array_equal(result.mask, remover.mask(rgba, **mask_options))
    assert list(result.seconds) == [
        "decode",
        "preprocess",
        "network",
        "postprocess",
        "shape",
        "compose",
        "encode",
    ]
    assert all(v >= 0 for v in result.seconds.values())


def test_cutout_and_mask_output_applies_to_both_results(remover):
    result = remover.cutout_and_mask(load_photo("chelsea"), output="png", background="white")
    assert Image.open(io.BytesIO(result.cutout)).mode == "RGB"
    assert Image.open(io.BytesIO(result.mask)).mode == "L"
    with pytest.raises(UnsupportedOptionError, match="feather"):
        remover.cutout_and_mask(load_photo("chelsea"), feather=-1)
