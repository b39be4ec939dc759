"""The BriaRMBG network: RMBG-1.4's topology and names, strict loading, outputs, real weights.

Random-weight tests run the full topology on 64x64 inputs (fast). The real-weight tests use the
stand-in checkpoint (``standin_dir`` in conftest.py: real trained weights in RMBG-1.4's layout) and
fail, never skip, when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rmbg.errors import CheckpointMismatchError, ModelError
from rmbg.model import (
    PARAMETERS,
    RSU4,
    RSU4F,
    RSU5,
    RSU6,
    RSU7,
    STATE_DICT_KEYS,
    BriaRMBG,
    MaskOutput,
    build_model,
    load_state_dict_strict,
    random_model,
)

from .helpers import load_photo
from .reference import preprocess_image

COUNTERS = 112
TENSORS = STATE_DICT_KEYS - COUNTERS  # 686: the layout of most exports and of the stand-in


@pytest.fixture(scope="module")
def net() -> BriaRMBG:
    return random_model(seed=3)


@pytest.fixture(scope="module")
def numpy_state(net: BriaRMBG) -> dict[str, np.ndarray]:
    """The random network's full state dict (798 entries) as numpy arrays, like a file's."""
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}


def without_counters(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# -- topology ---------------------------------------------------------------------------------


def test_parameter_count_is_rmbg_1_4s() -> None:
    model = BriaRMBG()
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS == 44_046_790


def test_state_dict_has_798_entries_112_of_them_counters() -> None:
    keys = list(BriaRMBG().state_dict())
    assert len(keys) == STATE_DICT_KEYS == 798
    assert sum(k.endswith(".num_batches_tracked") for k in keys) == COUNTERS
    assert len(set(keys)) == len(keys)
    assert not any(k.startswith(("module.", "model.", "net.")) for k in keys)  # no prefix


def test_module_names_and_layers_follow_briarmbg_py() -> None:
    model = BriaRMBG()
    blocks = {
        "stage1": (RSU7, 64, 32, 64),
        "stage2": (RSU6, 64, 32, 128),
        "stage3": (RSU5, 128, 64, 256),
        "stage4": (RSU4, 256, 128, 512),
        "stage5": (RSU4F, 512, 256, 512),
        "stage6": (RSU4F, 512, 256, 512),
        "stage5d": (RSU4F, 1024, 256, 512),
        "stage4d": (RSU4, 1024, 128, 256),
        "stage3d": (RSU5, 512, 64, 128),
        "stage2d": (RSU6, 256, 32, 64),
        "stage1d": (RSU7, 128, 16, 64),
    }
    for name, (cls, in_ch, mid_ch, out_ch) in blocks.items():
        block = getattr(model, name)
        assert type(block) is cls, name
        assert block.rebnconvin.conv_s1.in_channels == in_ch, name
        assert block.rebnconv1.conv_s1.out_channels == mid_ch, name
        assert block.rebnconv1d.conv_s1.out_channels == out_ch, name
    # REBNCONV = conv_s1 -> bn_s1 -> relu_s1
    rebn = model.stage1.rebnconvin
    assert [n for n, _ in rebn.named_children()] == ["conv_s1", "bn_s1", "relu_s1"]
    # dilations: the bottom of an RSU-L is dilated 2; RSU4F runs 1, 2, 4, 8 then 4, 2, 1
    assert model.stage1.rebnconv7.conv_s1.dilation == (2, 2)
    assert model.stage4.rebnconv4.conv_s1.dilation == (2, 2)
    rsu4f = model.stage5
    dil = [
        getattr(rsu4f, n).conv_s1.dilation[0]
        for n in (
            "rebnconv1",
            "rebnconv2",
            "rebnconv3",
            "rebnconv4",
            "rebnconv3d",
            "rebnconv2d",
            "rebnconv1d",
        )
    ]
    assert dil == [1, 2, 4, 8, 4, 2, 1]
    assert not any(n.startswith("pool") for n, _ in rsu4f.named_children())
    # RSU7: pool1..pool5, rebnconv1..7, rebnconv6d..1d
    names7 = {n for n, _ in model.stage1.named_children()}
    assert {f"pool{i}" for i in range(1, 6)} <= names7 and "pool6" not in names7
    assert {f"rebnconv{i}d" for i in range(1, 7)} <= names7 and "rebnconv7d" not in names7
    # conv_in is stride 2; every pool is MaxPool2d(2, 2, ceil_mode=True); pool_in exists
    assert model.conv_in.stride == (2, 2) and model.conv_in.out_channels == 64
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert model.pool_in in pools
    assert all(p.kernel_size == 2 and p.stride == 2 and p.ceil_mode for p in pools)
    # side heads
    for i, ch in enumerate((64, 64, 128, 256, 512, 512), start=1):
        side = getattr(model, f"side{i}")
        assert (side.in_channels, side.out_channels, side.kernel_size) == (ch, 1, (3, 3))


@pytest.mark.realweights
def test_key_names_and_shapes_match_the_standin_checkpoint(standin_dir: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(standin_dir / "model.safetensors"), framework="numpy") as f:
        file_shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    ours = {k: tuple(v.shape) for k, v in BriaRMBG().state_dict().items()}
    assert len(file_shapes) in (TENSORS, STATE_DICT_KEYS)
    counters = {k for k in ours if k.endswith("num_batches_tracked")}
    assert set(file_shapes) - set(ours) == set()
    assert set(ours) - set(file_shapes) <= counters
    assert {k: s for k, s in ours.items() if k in file_shapes} == file_shapes


# -- strict loading ---------------------------------------------------------------------------


def test_strict_loading_accepts_686_and_798_layouts(net, numpy_state) -> None:
    assert len(numpy_state) == 798
    for state in (numpy_state, without_counters(numpy_state)):
        model = BriaRMBG()
        load_state_dict_strict(model, state)
        assert_same_weights(model, net)
    assert len(without_counters(numpy_state)) == TENSORS


def test_strict_loading_accepts_torch_tensors(net) -> None:
    model = BriaRMBG()
    load_state_dict_strict(model, net.state_dict())
    assert_same_weights(model, net)


def test_build_model_is_float32_in_eval_mode(net, numpy_state) -> None:
    half = {
        k: v.astype(np.float16) if v.dtype == np.float32 else v
        for k, v in without_counters(numpy_state).items()
    }
    model = build_model(half)
    assert not model.training
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    np.testing.assert_allclose(
        model.side1.weight.detach().numpy(), numpy_state["side1.weight"], rtol=1e-3, atol=1e-4
    )


def test_missing_key_is_named(numpy_state) -> None:
    state = without_counters(numpy_state)
    del state["stage3.rebnconv2.bn_s1.running_var"]
    with pytest.raises(
        CheckpointMismatchError, match=r"1 missing keys \(stage3\.rebnconv2\.bn_s1\.running_var\)"
    ) as info:
        load_state_dict_strict(BriaRMBG(), state)
    assert "unexpected" not in str(info.value)
    assert "briaai/RMBG-1.4" in str(info.value)  # what to use instead
    assert isinstance(info.value, ModelError) and isinstance(info.value, ValueError)


def test_unexpected_key_is_named(numpy_state) -> None:
    state = dict(numpy_state)
    state["side7.weight"] = np.zeros((1, 64, 3, 3), np.float32)
    with pytest.raises(
        CheckpointMismatchError, match=r"1 unexpected keys \(side7\.weight\)"
    ) as info:
        load_state_dict_strict(BriaRMBG(), state)
    assert "missing" not in str(info.value)


def test_shape_mismatch_is_named(numpy_state) -> None:
    state = dict(numpy_state)
    state["side3.weight"] = np.zeros((2, 128, 3, 3), np.float32)
    with pytest.raises(CheckpointMismatchError, match=r"1 shape mismatches") as info:
        load_state_dict_strict(BriaRMBG(), state)
    assert "side3.weight (2, 128, 3, 3) in the checkpoint, (1, 128, 3, 3) in the network" in str(
        info.value
    )


def test_many_mismatches_are_counted_and_truncated(numpy_state) -> None:
    state = {k: v for k, v in numpy_state.items() if not k.startswith("stage6.")}
    n_missing = sum(
        k.startswith("stage6.") and not k.endswith("num_batches_tracked") for k in numpy_state
    )
    assert n_missing > 10
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_strict(BriaRMBG(), state)
    message = str(info.value)
    assert f"{n_missing} missing keys" in message
    assert f"and {n_missing - 10} more" in message
    assert message.count("stage6.") == 10


def test_a_wrapper_prefix_gets_a_hint(numpy_state) -> None:
    state = {f"module.{k}": v for k, v in without_counters(numpy_state).items()}
    with pytest.raises(CheckpointMismatchError, match=r"'module\.'") as info:
        load_state_dict_strict(BriaRMBG(), state)
    assert "strip that prefix" in str(info.value)


def test_a_failed_load_leaves_the_model_untouched(numpy_state) -> None:
    model = BriaRMBG()
    before = model.side1.weight.detach().clone()
    state = dict(numpy_state)
    state["extra"] = np.zeros(1, np.float32)
    with pytest.raises(CheckpointMismatchError):
        load_state_dict_strict(model, state)
    assert torch.equal(model.side1.weight, before)


# -- forward ----------------------------------------------------------------------------------


def test_forward_structure_and_shapes_on_64x64(net) -> None:
    x = torch.rand(2, 3, 64, 64) - 0.5
    with torch.no_grad():
        out = net(x)
    assert isinstance(out, tuple) and len(out) == 2
    masks, features = out
    assert isinstance(masks, list) and isinstance(features, list)
    assert len(masks) == len(features) == 6
    for m in masks:
        assert m.shape == (2, 1, 64, 64) and m.dtype == torch.float32
        assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0  # sigmoids
    # hx1d, hx2d, hx3d, hx4d, hx5d, hx6: stride 2, 4, ... 64 (conv_in halves, each pool halves)
    expected = [(64, 32), (64, 16), (128, 8), (256, 4), (512, 2), (512, 1)]
    assert [(f.shape[1], f.shape[2]) for f in features] == expected
    assert all(f.shape[2] == f.shape[3] and f.shape[0] == 2 for f in features)
    # the masks are the side heads on the features, upsampled to the input, through a sigmoid
    d1 = torch.sigmoid(F.interpolate(net.side1(features[0]), size=(64, 64), mode="bilinear"))
    d6 = torch.sigmoid(F.interpolate(net.side6(features[5]), size=(64, 64), mode="bilinear"))
    torch.testing.assert_close(masks[0], d1)
    torch.testing.assert_close(masks[5], d6)


def test_odd_sizes_use_ceil_mode_pooling_and_exact_upsampling(net) -> None:
    x = torch.rand(1, 3, 50, 38) - 0.5
    with torch.no_grad():
        masks, features = net(x)
    assert all(m.shape == (1, 1, 50, 38) for m in masks)
    sizes = [tuple(f.shape[2:]) for f in features]
    assert sizes == [(25, 19), (13, 10), (7, 5), (4, 3), (2, 2), (1, 1)]  # ceil, not floor


def _bria_rsu7(b: RSU7, x: torch.Tensor) -> torch.Tensor:
    """BRIA's RSU7.forward, transcribed literally (checks the generic loop of RSU)."""
    up = lambda s, t: F.interpolate(s, size=t.shape[2:], mode="bilinear")  # noqa: E731
    hxin = b.rebnconvin(x)
    hx1 = b.rebnconv1(hxin)
    hx2 = b.rebnconv2(b.pool1(hx1))
    hx3 = b.rebnconv3(b.pool2(hx2))
    hx4 = b.rebnconv4(b.pool3(hx3))
    hx5 = b.rebnconv5(b.pool4(hx4))
    hx6 = b.rebnconv6(b.pool5(hx5))
    hx7 = b.rebnconv7(hx6)
    hx6d = b.rebnconv6d(torch.cat((hx7, hx6), 1))
    hx5d = b.rebnconv5d(torch.cat((up(hx6d, hx5), hx5), 1))
    hx4d = b.rebnconv4d(torch.cat((up(hx5d, hx4), hx4), 1))
    hx3d = b.rebnconv3d(torch.cat((up(hx4d, hx3), hx3), 1))
    hx2d = b.rebnconv2d(torch.cat((up(hx3d, hx2), hx2), 1))
    hx1d = b.rebnconv1d(torch.cat((up(hx2d, hx1), hx1), 1))
    return hx1d + hxin


def _bria_rsu4(b: RSU4, x: torch.Tensor) -> torch.Tensor:
    """BRIA's RSU4.forward, transcribed literally."""
    up = lambda s, t: F.interpolate(s, size=t.shape[2:], mode="bilinear")  # noqa: E731
    hxin = b.rebnconvin(x)
    hx1 = b.rebnconv1(hxin)
    hx2 = b.rebnconv2(b.pool1(hx1))
    hx3 = b.rebnconv3(b.pool2(hx2))
    hx4 = b.rebnconv4(hx3)
    hx3d = b.rebnconv3d(torch.cat((hx4, hx3), 1))
    hx2d = b.rebnconv2d(torch.cat((up(hx3d, hx2), hx2), 1))
    hx1d = b.rebnconv1d(torch.cat((up(hx2d, hx1), hx1), 1))
    return hx1d + hxin


def test_generic_rsu_matches_brias_literal_blocks(net) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        x = torch.randn(1, 64, 37, 29)
        torch.testing.assert_close(net.stage1(x), _bria_rsu7(net.stage1, x), rtol=0, atol=0)
        x = torch.randn(1, 256, 13, 11)
        torch.testing.assert_close(net.stage4(x), _bria_rsu4(net.stage4, x), rtol=0, atol=0)


def test_random_model_is_seeded_and_has_random_batchnorm_statistics() -> None:
    a = random_model(seed=5)
    assert not a.training
    assert_same_weights(a, random_model(seed=5))
    assert not torch.equal(a.side1.weight, random_model(seed=6).side1.weight)
    bn = a.stage2.rebnconv3.bn_s1
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert not torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    assert bool((bn.running_var > 0).all())


# -- MaskOutput -------------------------------------------------------------------------------


class _TransformersStyle(nn.Module):
    """Returns what a transformers-loaded model may: an output object whose [0] is the list."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> object:
        masks, features = self.inner(x)
        return {0: masks, 1: features}  # indexable like a ModelOutput


def test_mask_output_returns_the_first_mask(net) -> None:
    x = torch.rand(1, 3, 64, 64) - 0.5
    wrapped = MaskOutput(net).eval()
    with torch.no_grad():
        expected = net(x)[0][0]
        got = wrapped(x)
        from_output_object = MaskOutput(_TransformersStyle(net))(x)
        rewrapped = MaskOutput(wrapped)(x)  # a module that already returns the mask
    assert isinstance(got, torch.Tensor) and got.shape == (1, 1, 64, 64)
    assert torch.equal(got, expected)
    assert torch.equal(from_output_object, expected)
    assert torch.equal(rewrapped, expected)
    assert wrapped.module is net


def test_mask_output_rejects_other_outputs() -> None:
    class Flat(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return (x.mean(), x.sum())

    with pytest.raises(TypeError, match="BriaRMBG output structure"):
        MaskOutput(Flat())(torch.zeros(1, 3, 8, 8))


# -- real weights -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def standin_state(standin_dir: Path) -> dict[str, np.ndarray]:
    from rmbg.weights import read_state_dict

    return read_state_dict(standin_dir / "model.safetensors")


@pytest.fixture(scope="module")
def standin_model(standin_state) -> BriaRMBG:
    return build_model(standin_state)


@pytest.mark.realweights
def test_standin_loads_with_and_without_batch_counters(standin_state, standin_model) -> None:
    assert len(standin_state) in (TENSORS, STATE_DICT_KEYS)
    bare = without_counters(standin_state)
    official_layout = dict(bare)
    for key in BriaRMBG().state_dict():
        if key.endswith("num_batches_tracked"):
            official_layout[key] = np.array(123, dtype=np.int64)  # as in the official file
    assert len(bare) == TENSORS and len(official_layout) == STATE_DICT_KEYS
    with_counters = build_model(official_layout)
    assert int(with_counters.stage1.rebnconvin.bn_s1.num_batches_tracked) == 123
    without = build_model(bare)
    for (ka, a), (kb, b) in zip(
        with_counters.named_parameters(), without.named_parameters(), strict=True
    ):
        assert ka == kb and torch.equal(a, b), ka
    for name in ("running_mean", "running_var"):
        assert torch.equal(
            getattr(with_counters.stage6.rebnconv2.bn_s1, name),
            getattr(standin_model.stage6.rebnconv2.bn_s1, name),
        )


@pytest.mark.slow
@pytest.mark.realweights
def test_standin_weights_cut_the_astronaut_out(standin_model) -> None:
    """At the reference's 1024x1024: the figure is foreground, the studio backdrop is not."""
    image = load_photo("astronaut")  # 512x512 NASA portrait
    x = preprocess_image(np.array(image), [1024, 1024])
    with torch.inference_mode():
        mask = MaskOutput(standin_model)(x)
    m = mask[0, 0].numpy()
    assert m.shape == (1024, 1024)
    centre = m[384:640, 384:640]  # the middle 1/16: her torso
    assert (centre > 0.5).mean() > 0.9
    assert float(np.median(centre)) > 0.9
    for corner in (m[:128, :128], m[:128, -128:]):  # top corners: dark backdrop
        assert float(corner.max()) < 0.5
        assert float(corner.mean()) < 0.05
    head = m[40:240, 320:560]  # her head, above the shoulders
    assert (head > 0.5).mean() > 0.6
    assert 0.3 < float((m > 0.5).mean()) < 0.75  # she fills about half the frame
