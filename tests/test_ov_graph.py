"""The torch-free OpenVINO graph of BriaRMBG (``rmbg.backends.ov_graph``) against the torch module.

The graph is written from the state dict with OpenVINO's graph API, BatchNorm folded in float64.
Random weights with random BatchNorm statistics prove it computes the torch module's function at
any input size (odd sizes exercise ceil-mode pooling and the exact upsampling targets); the
real-weight comparison on every bundled photo is in ``test_parity.py`` (the checkpoint route goes
through this graph), and ``test_openvino.py`` runs it in a process that cannot import torch.

Measured on the project's 2-core AMD EPYC: raw probabilities within 2.5e-6 of torch f32 on random
weights (bound asserted: 1e-5).
"""

from __future__ import annotations

import collections
import json

import numpy as np
import openvino as ov
import pytest

from rmbg.backends.ov_graph import build_model, fold_batchnorm
from rmbg.errors import CheckpointMismatchError
from rmbg.topology import (
    BN_EPS,
    COUNTER,
    PARAMETERS,
    STATE_DICT_KEYS,
    counter_keys,
    state_dict_shapes,
)

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


@pytest.fixture(scope="module")
def numpy_state() -> dict[str, np.ndarray]:
    """Random weights in RMBG-1.4's layout, made with numpy only (686 tensors, no counters)."""
    rng = np.random.default_rng(0)
    state = {}
    for key, shape in state_dict_shapes().items():
        if key.endswith(COUNTER):
            continue
        value = rng.standard_normal(shape, dtype=np.float32) * 0.05
        if key.endswith("running_var"):
            value = 1 + np.abs(value)
        state[key] = value
    return state


def _ops(model: ov.Model) -> collections.Counter[str]:
    return collections.Counter(op.get_type_name() for op in model.get_ordered_ops())


# -- the topology facts, without torch ------------------------------------------------------------
def test_topology_counts_are_rmbg_1_4s() -> None:
    shapes = state_dict_shapes()
    assert len(shapes) == STATE_DICT_KEYS == 798
    assert len(counter_keys()) == 112
    assert all(shapes[k] == () for k in counter_keys())
    params = sum(
        int(np.prod(s))
        for k, s in shapes.items()
        if not k.endswith((COUNTER, "running_mean", "running_var"))
    )
    assert params == PARAMETERS == 44_046_790


def test_topology_is_the_torch_modules() -> None:
    import torch

    from rmbg.model import BriaRMBG

    net = BriaRMBG()
    assert list(state_dict_shapes().items()) == [
        (k, tuple(v.shape)) for k, v in net.state_dict().items()
    ]
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 112 and {m.eps for m in norms} == {BN_EPS}


def test_fold_batchnorm_is_conv_then_eval_batchnorm() -> None:
    import torch

    rng = np.random.default_rng(1)
    out_ch, in_ch = 16, 8
    w = rng.standard_normal((out_ch, in_ch, 3, 3)).astype(np.float32) * 0.2
    b, beta, mean = (rng.standard_normal(out_ch).astype(np.float32) * 0.3 for _ in range(3))
    gamma = (1 + 0.5 * rng.standard_normal(out_ch)).astype(np.float32)
    var = rng.uniform(1e-4, 3, out_ch).astype(np.float32)  # small variances magnify rounding
    x = torch.from_numpy(rng.standard_normal((1, in_ch, 9, 11)))  # float64

    conv = torch.nn.Conv2d(in_ch, out_ch, 3, padding=1).double()
    bn = torch.nn.BatchNorm2d(out_ch).double().eval()
    with torch.no_grad():
        for p, v in ((conv.weight, w), (conv.bias, b), (bn.weight, gamma), (bn.bias, beta)):
            p.copy_(torch.from_numpy(v))
        bn.running_mean.copy_(torch.from_numpy(mean))
        bn.running_var.copy_(torch.from_numpy(var))
        exact = bn(conv(x)).numpy()
        fw, fb = fold_batchnorm(w, b, gamma, beta, mean, var)
        assert fw.dtype == fb.dtype == np.float32
        folded = torch.nn.functional.conv2d(
            x, torch.from_numpy(fw).double(), torch.from_numpy(fb).double(), padding=1
        ).numpy()
    # only the float32 rounding of the folded weights remains: ~1e-7 relative
    scale = np.abs(exact).max()
    assert np.abs(folded - exact).max() <= 1e-6 * scale
    # eps is BatchNorm2d's: another eps is visibly different
    fw2, _ = fold_batchnorm(w, b, gamma, beta, mean, var, eps=1e-3)
    assert np.abs(fw2 - fw).max() > 1e-3


# -- the graph ------------------------------------------------------------------------------------
def test_graph_is_the_mask_only(numpy_state) -> None:
    model = build_model(numpy_state)
    (x,) = model.inputs
    (y,) = model.outputs
    assert x.get_any_name() == "x" and x.get_element_type() == ov.Type.f32
    assert list(x.get_shape()) == [1, 3, 1024, 1024] and list(y.get_shape()) == [1, 1, 1024, 1024]
    ops = _ops(model)
    # conv_in + 112 REBNCONVs + side1: side2..side6 are pruned, every BatchNorm is folded
    assert ops["Convolution"] == 114 and ops["Relu"] == 112
    assert ops["MaxPool"] == 33 and ops["Interpolate"] == 34 and ops["Sigmoid"] == 1
    assert not {"BatchNormInference", "Multiply", "Subtract", "Divide"} & set(ops)
    assert not [op for op in model.get_ordered_ops() if "side2" in op.get_friendly_name()]


def test_input_size_is_static_and_any(numpy_state) -> None:
    model = build_model(numpy_state, (320, 256))
    assert list(model.inputs[0].get_shape()) == [1, 3, 320, 256]
    assert list(model.outputs[0].get_shape()) == [1, 1, 320, 256]
    with pytest.raises(ValueError, match="input_size"):
        build_model(numpy_state, (0, 256))


def test_counters_are_optional_other_keys_are_not(numpy_state) -> None:
    with_counters = {**numpy_state, **{k: np.array(5, np.int64) for k in counter_keys()}}
    assert len(with_counters) == 798
    build_model(with_counters, (64, 64))
    missing = {k: v for k, v in numpy_state.items() if k != "stage3.rebnconv2.bn_s1.running_var"}
    with pytest.raises(
        CheckpointMismatchError, match=r"1 missing keys \(stage3\.rebnconv2\.bn_s1\.running_var\)"
    ):
        build_model(missing, (64, 64))
    shaped = {**numpy_state, "side1.weight": np.zeros((1, 32, 3, 3), np.float32)}
    with pytest.raises(
        CheckpointMismatchError, match=r"side1\.weight \(1, 32, 3, 3\) in the checkpoint"
    ):
        build_model(shaped, (64, 64))
    prefixed = {f"module.{k}": v for k, v in numpy_state.items()}
    with pytest.raises(CheckpointMismatchError, match="wrapper"):
        build_model(prefixed, (64, 64))


@pytest.fixture(scope="module")
def random_net():
    from rmbg.model import MaskOutput, random_model

    return MaskOutput(random_model(seed=7)).eval()


@pytest.mark.slow
@pytest.mark.parametrize("size", [(96, 96), (65, 97), (256, 320)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_random_weights_match_torch(random_net, size) -> None:
    import torch

    state = {k: v.numpy() for k, v in random_net.module.state_dict().items()}
    compiled = ov.Core().compile_model(build_model(state, size), "CPU", F32)
    x = np.random.default_rng(2).uniform(-0.5, 0.5, (1, 3, *size)).astype(np.float32)
    with torch.no_grad():
        expected = random_net(torch.from_numpy(x)).numpy()
    got = compiled(x)[0]
    assert got.shape == expected.shape == (1, 1, *size)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_backend_builds_a_checkpoint_without_convert_model(random_net, tmp_path, monkeypatch):
    """A checkpoint file at a non-default input size: the backend writes the graph, never traces."""
    from safetensors.numpy import save_file

    from rmbg.backends.openvino import OpenVINOBackend
    from rmbg.backends.torch import TorchBackend
    from rmbg.specs import RMBG_1_4
    from rmbg.weights import resolve_model

    state = {
        k: v.numpy() for k, v in random_net.module.state_dict().items() if not k.endswith(COUNTER)
    }
    save_file(state, str(tmp_path / "model.safetensors"))
    spec = RMBG_1_4.with_input_size(128, 160)
    source = resolve_model(tmp_path / "model.safetensors", spec=spec)
    assert source.kind == "checkpoint"

    def no_tracing(*args, **kwargs):
        raise AssertionError("a checkpoint must not go through ov.convert_model")

    monkeypatch.setattr(ov, "convert_model", no_tracing)
    backend = OpenVINOBackend(source, precision="f32", cache_dir=tmp_path / "cache")
    engine = backend.load("CPU")
    key = json.loads((backend.model_path().parent / "manifest.json").read_text())["key"]
    assert key["format"] == 2 and key["kind"] == "checkpoint"
    assert key["input_shape"] == [1, 3, 128, 160]
    reference = TorchBackend(source, precision="f32").load("cpu")
    x = np.random.default_rng(3).uniform(-0.5, 0.5, (1, 3, 128, 160)).astype(np.float32)
    np.testing.assert_allclose(engine(x), reference(x), atol=1e-5, rtol=0)
