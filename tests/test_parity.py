"""Parity: the OpenVINO backend computes what the PyTorch reference computes.

Random weights (full BriaRMBG topology, small inputs) prove the conversion is faithful for any
weights; the stand-in checkpoint (real trained weights, RMBG-1.4 layout, version 2: realistic
BatchNorm statistics, weights that are not fp16 values) proves it on real photos, at every
precision each backend offers on this machine. Each test also asserts which precision ran.
Measured on the project's 2-core AMD EPYC (AVX-512, BF16, no FP16) CI machine, masks against
torch f32 in grey levels, worst photo:

| comparison (worst of the 8 bundled and held-out photos) | measured                   | bound asserted                       |
|---------------------------------------------------|-------------------------------|---------------------------------------|
| OV f32 vs torch f32, random weights, raw          |                               | atol 1e-4                             |
| OV f32 (the torch-free checkpoint route)          | max 1, mean 0.000, IoU 1.0000 | max <= 1, mean <= 0.05, IoU >= 0.999  |
| OV auto (= bf16 on this CPU), OV bf16             | max 7, mean 0.155, IoU 0.9958 | max <= 16, mean <= 0.5, IoU >= 0.985  |
| OV f16                                            | refused here (no FP16)        | the bf16 bound where a device has it  |
| IR compressed to fp16 (ov.save_model default), f32| max 1, mean 0.000, IoU 1.0000 | max <= 2, mean <= 0.01, IoU >= 0.9999 |
| the same fp16 IR, auto (bf16)                     | max 6, mean 0.151, IoU 0.9952 | max <= 16, mean <= 0.5, IoU >= 0.985  |
| torch bf16 (CPU autocast)                         | max 9, mean 0.648, IoU 0.9944 | max <= 16, mean <= 1.3, IoU >= 0.985  |
| torch f16 (CPU autocast, rocket at 256x256)       | max 1, mean 0.027, IoU 0.9983 | max <= 2, mean <= 0.06, IoU >= 0.996  |
| OV on the fp16 ONNX export (f32 hint), 4 photos   | max 1, mean 0.000, IoU 1.0000 | max <= 2, mean <= 0.1, IoU >= 0.999   |
| reference pipeline + onnxruntime on the export    | max 1, mean 0.003, IoU 0.9999 | max <= 2, mean <= 0.05, IoU >= 0.999  |

See docs/accuracy.md.
"""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
import torch  # the test extra installs torch and openvino: parity never silently skips

from rmbg.backends.base import ModelSource
from rmbg.backends.openvino import OpenVINOBackend
from rmbg.backends.torch import TorchBackend
from rmbg.errors import UnsupportedOptionError
from rmbg.model import random_model
from rmbg.postprocess import postprocess
from rmbg.preprocess import preprocess
from rmbg.specs import RMBG_1_4

from .helpers import ALL_PHOTOS, PHOTOS, load_photo, mask_stats


@pytest.fixture(scope="module", params=[(96, 96), (128, 160)], ids=lambda s: f"{s[0]}x{s[1]}")
def random_source(request):
    spec = RMBG_1_4.with_input_size(*request.param)
    return ModelSource(
        kind="module",
        module=random_model(seed=7),
        spec=spec,
        weights_digest=f"random-7-{spec.digest()}",
    )


@pytest.mark.slow
def test_random_weights_raw_outputs_match(random_source, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("ovcache")
    ref = TorchBackend(random_source, precision="f32").load("cpu")
    ovb = OpenVINOBackend(random_source, precision="f32", cache_dir=cache_dir).load("CPU")
    rng = np.random.default_rng(0)
    h, w = random_source.spec.input_size
    for _ in range(3):
        rgb = rng.integers(
            0, 256, (rng.integers(20, 300), rng.integers(20, 300), 3), dtype=np.uint8
        )
        x = preprocess(rgb, random_source.spec)
        assert x.shape == (1, 3, h, w)
        a, b = ref(x), ovb(x)
        assert a.shape == b.shape == (1, 1, h, w)
        np.testing.assert_allclose(b, a, atol=1e-4, rtol=0)
        ma = postprocess(a, rgb.shape[:2])
        mb = postprocess(b, rgb.shape[:2])
        assert np.abs(ma.astype(int) - mb.astype(int)).max() <= 1


@pytest.fixture(scope="module")
def standin_source(standin_dir):
    from rmbg.weights import resolve_model

    return resolve_model(standin_dir)


@pytest.fixture(scope="module")
def ov_cache(tmp_path_factory):
    """One cache for the module: auto, bf16 and the notebook's IR all start from the f32 IR."""
    return tmp_path_factory.mktemp("ov")


@pytest.fixture(scope="module")
def torch_masks(standin_source):
    return _masks(TorchBackend(standin_source, precision="f32").load("cpu"))


def _masks(engine, names=ALL_PHOTOS, spec=RMBG_1_4):
    return {
        name: postprocess(engine(preprocess(load_photo(name), spec)), load_photo(name).shape[:2])
        for name in names
    }


def _ov_masks(source, precision, cache_dir, photos=ALL_PHOTOS):
    engine = OpenVINOBackend(source, precision=precision, cache_dir=cache_dir).load("CPU")
    return _masks(engine, photos)


@pytest.mark.slow
@pytest.mark.realweights
def test_standin_f32_masks_within_one_grey_level(standin_source, torch_masks, ov_cache):
    """The checkpoint route (the torch-free graph of ov_graph) on every bundled photo."""
    assert standin_source.kind == "checkpoint"
    masks = _ov_masks(standin_source, "f32", ov_cache)
    for name in ALL_PHOTOS:
        stats = mask_stats(masks[name], torch_masks[name])
        print(name, stats)
        assert stats["max"] <= 1 and stats["mean"] <= 0.05 and stats["iou"] >= 0.999, (name, stats)


#: Bounds on the stand-in (masks against torch f32 on the eight photos): (max grey levels, mean,
#: min IoU). Measured figures are in the module docstring and docs/accuracy.md; the bounds leave
#: about twice the worst photo's difference.
BF16 = (16, 0.5, 0.985)
#: f16 has three more mantissa bits than bf16 and the network stays far from f16's range: held to
#: the bf16 bound (this CPU lacks FP16, so it is measured only where a device has it)
F16 = BF16
FP16_WEIGHTS = (2, 0.01, 0.9999)  # an IR compressed to fp16, computed in f32
#: torch's CPU autocast: its mean difference is higher than OpenVINO's (small differences spread
#: over the whole mask)
TORCH_BF16 = (16, 1.3, 0.985)
TORCH_F16 = (2, 0.06, 0.996)  # at a 256x256 network input (see the test)


def _assert_within(masks, torch_masks, bound, label, names=ALL_PHOTOS):
    max_bound, mean_bound, iou_bound = bound
    worst = {"max": 0.0, "mean": 0.0, "iou": 1.0}
    for name in names:
        stats = mask_stats(masks[name], torch_masks[name])
        assert stats["max"] <= max_bound, (label, name, stats)
        assert stats["mean"] <= mean_bound and stats["iou"] >= iou_bound, (label, name, stats)
        worst = {
            "max": max(worst["max"], stats["max"]),
            "mean": max(worst["mean"], stats["mean"]),
            "iou": min(worst["iou"], stats["iou"]),
        }
    print(
        f"\n{label}: worst photo max {worst['max']:.0f}, mean {worst['mean']:.3f}, "
        f"IoU {worst['iou']:.4f}"
    )


def _cpu_has(capability: str) -> bool:
    return capability in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@pytest.mark.slow
@pytest.mark.realweights
def test_standin_default_precision_bound(standin_source, torch_masks, ov_cache):
    """precision="auto" runs what the CPU does best: bf16 where it has BF16, else f32."""
    engine = OpenVINOBackend(standin_source, precision="auto", cache_dir=ov_cache).load("CPU")
    expected = "bf16" if _cpu_has("BF16") else "f32"
    assert engine.info.inference_precision == expected
    bound = BF16 if expected == "bf16" else (1, 0.01, 0.9999)
    _assert_within(_masks(engine), torch_masks, bound, f"OpenVINO auto ({expected})")


@pytest.mark.slow
@pytest.mark.realweights
@pytest.mark.parametrize("precision", ["bf16", "f16"])
def test_standin_openvino_reduced_precision_bound(
    standin_source, torch_masks, tmp_path_factory, precision, ov_cache
):
    """bf16/f16 inference where the CPU has it; a clear refusal (before converting) where not."""
    cache_dir = ov_cache if precision == "bf16" else tmp_path_factory.mktemp("ov")
    backend = OpenVINOBackend(standin_source, precision=precision, cache_dir=cache_dir)
    if not _cpu_has({"bf16": "BF16", "f16": "FP16"}[precision]):
        with pytest.raises(
            UnsupportedOptionError, match=f"precision='{precision}' is not supported"
        ):
            backend.load("CPU")
        assert not any(cache_dir.iterdir())
        return
    engine = backend.load("CPU")
    assert engine.info.inference_precision == precision
    assert engine.info.details["config"]["INFERENCE_PRECISION_HINT"] == precision
    _assert_within(_masks(engine), torch_masks, {"bf16": BF16, "f16": F16}[precision], precision)


@pytest.mark.slow
@pytest.mark.realweights
def test_standin_ir_compressed_to_fp16_the_notebooks_way(
    standin_source, torch_masks, tmp_path_factory, ov_cache
):
    """The notebook saves its IR with ov.save_model's default, which compresses the weights to
    fp16: with realistic (not fp16-exact) weights, in f32 and at the CPU's default precision."""
    from rmbg.weights import resolve_model

    cache_dir = ov_cache
    f32_ir = OpenVINOBackend(standin_source, precision="f32", cache_dir=cache_dir).model_path()
    assert f32_ir is not None
    notebook = tmp_path_factory.mktemp("notebook") / "rmbg-1.4.xml"
    ov.save_model(ov.Core().read_model(str(f32_ir)), str(notebook))  # compress_to_fp16=True
    assert 'element_type="f16"' in notebook.read_text()
    ratio = notebook.with_suffix(".bin").stat().st_size / f32_ir.with_suffix(".bin").stat().st_size
    assert 0.49 < ratio < 0.51  # the weights really are stored in fp16
    source = resolve_model(notebook)
    f32 = OpenVINOBackend(source, precision="f32", cache_dir=cache_dir).load("CPU")
    assert f32.info.inference_precision == "f32"
    _assert_within(_masks(f32), torch_masks, FP16_WEIGHTS, "fp16 IR, f32")
    auto = OpenVINOBackend(source, precision="auto", cache_dir=cache_dir).load("CPU")
    expected = "bf16" if _cpu_has("BF16") else "f32"
    assert auto.info.inference_precision == expected
    bound = BF16 if expected == "bf16" else FP16_WEIGHTS
    _assert_within(_masks(auto), torch_masks, bound, f"fp16 IR, auto ({expected})")


@pytest.mark.slow
@pytest.mark.realweights
def test_standin_torch_bf16_bound(standin_source, torch_masks):
    """The reference backend's CPU autocast in bf16."""
    engine = TorchBackend(standin_source, precision="bf16").load("cpu")
    assert engine.info.inference_precision == "bf16"
    _assert_within(_masks(engine), torch_masks, TORCH_BF16, "torch bf16")


@pytest.mark.slow
@pytest.mark.realweights
def test_standin_torch_f16_bound(standin_source):
    """The reference backend's CPU autocast in f16, on the rocket (the worst photo elsewhere) at
    a 256x256 network input: a CPU without fp16 arithmetic runs it about 250x slower than f32
    (35 s at 256x256 and 195 s at 512x512 on this machine: about 13 minutes at 1024). Compared with torch f32 at that size."""
    import dataclasses

    small = dataclasses.replace(standin_source, spec=standin_source.spec.with_input_size(256, 256))
    reference = _masks(TorchBackend(small, precision="f32").load("cpu"), ("rocket",), small.spec)
    engine = TorchBackend(small, precision="f16").load("cpu")
    assert engine.info.inference_precision == "f16"
    masks = _masks(engine, ("rocket",), small.spec)
    _assert_within(masks, reference, TORCH_F16, "torch f16 (256x256)", ("rocket",))


@pytest.mark.slow
@pytest.mark.realweights
def test_standin_onnx_route_bound(standin_dir, torch_masks, tmp_path_factory):
    from rmbg.weights import resolve_model

    source = resolve_model(standin_dir / "onnx" / "model_fp16.onnx")
    assert source.kind == "onnx"
    masks = _ov_masks(source, "f32", tmp_path_factory.mktemp("ov"), PHOTOS)
    for name in PHOTOS:
        stats = mask_stats(masks[name], torch_masks[name])
        assert stats["max"] <= 2 and stats["mean"] <= 0.1 and stats["iou"] >= 0.999, (name, stats)


@pytest.mark.slow
@pytest.mark.realweights
def test_golden_reference_pipeline_on_onnx_export(standin_dir, torch_masks):
    """The stand-in's mask equals the reference pipeline (BRIA's utilities.py) run on the export."""
    import onnxruntime as ort

    from .reference import postprocess_image, preprocess_image

    session = ort.InferenceSession(
        str(standin_dir / "onnx" / "model_fp16.onnx"), providers=["CPUExecutionProvider"]
    )
    for name in PHOTOS:
        im = load_photo(name)
        x = preprocess_image(im, [1024, 1024]).numpy()
        result = session.run(None, {session.get_inputs()[0].name: x})[0]
        golden = postprocess_image(torch.from_numpy(result), list(im.shape[:2]))
        stats = mask_stats(torch_masks[name], golden)
        assert stats["max"] <= 2 and stats["mean"] <= 0.05 and stats["iou"] >= 0.999, (name, stats)
