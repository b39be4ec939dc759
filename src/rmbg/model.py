"""The BriaRMBG network (IS-Net / DIS family) with RMBG-1.4's exact module and state-dict names.

Importing this module imports torch; the rest of rmbg imports it lazily. The stage table (block
heights, channels) is :mod:`rmbg.topology`'s, shared with the torch-free OpenVINO graph builder
:mod:`rmbg.backends.ov_graph`. The structure follows BRIA's ``briarmbg.py``: ``conv_in`` (stride 2; ``pool_in`` exists but is unused, as in the
checkpoint), six encoder stages of residual U-blocks (RSU7..RSU4, RSU4F), five decoder stages and
six side heads, each upsampled bilinearly to the input size and passed through a sigmoid.
``forward`` returns ``([sigmoid(d1), ..., sigmoid(d6)], [hx1d, hx2d, hx3d, hx4d, hx5d, hx6])``.

Loading is strict (:func:`load_state_dict_strict`): the 112 ``num_batches_tracked`` counters may be
present (the official file) or absent (most exports); anything else that differs is an error
naming the keys.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .topology import (
    COUNTER,
    DECODER,
    ENCODER,
    PARAMETERS,
    SIDES,
    STATE_DICT_KEYS,
    STEM,
    Stage,
    check_state_dict,
)

__all__ = [
    "PARAMETERS",
    "REBNCONV",
    "RSU",
    "RSU4",
    "RSU4F",
    "RSU5",
    "RSU6",
    "RSU7",
    "STATE_DICT_KEYS",
    "BriaRMBG",
    "MaskOutput",
    "build_model",
    "load_state_dict_strict",
    "random_model",
]

_COUNTER = COUNTER


def _upsample_like(src: torch.Tensor, tar: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``src`` to ``tar``'s spatial size (align_corners=False, as BRIA's)."""
    return F.interpolate(src, size=tar.shape[2:], mode="bilinear")


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(2, stride=2, ceil_mode=True)


class REBNCONV(nn.Module):
    """3x3 convolution (dilated), batch norm, ReLU: ``conv_s1`` -> ``bn_s1`` -> ``relu_s1``."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, dirate: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.conv_s1 = nn.Conv2d(
            in_ch, out_ch, 3, padding=1 * dirate, dilation=1 * dirate, stride=stride
        )
        self.bn_s1 = nn.BatchNorm2d(out_ch)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.relu_s1(self.bn_s1(self.conv_s1(x)))
        return out


class RSU(nn.Module):
    """Residual U-block of height ``depth``; :class:`RSU7` .. :class:`RSU4` fix the depth.

    Encoder ``rebnconv1..rebnconv{depth-1}`` with ``pool1..pool{depth-2}`` between them, a dilated
    ``rebnconv{depth}`` at the bottom, decoder ``rebnconv{depth-1}d..rebnconv1d``, each decoder
    output upsampled to the next skip's size; returns ``hx1d + hxin``. Module names and their
    registration order are those of BRIA's RSU7/RSU6/RSU5/RSU4.
    """

    def __init__(self, depth: int, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"An RSU block needs a depth of at least 3, not {depth}.")
        self.depth = depth
        self.rebnconvin = REBNCONV(in_ch, out_ch, dirate=1)
        self.rebnconv1 = REBNCONV(out_ch, mid_ch, dirate=1)
        for i in range(1, depth - 1):
            setattr(self, f"pool{i}", _pool())
            setattr(self, f"rebnconv{i + 1}", REBNCONV(mid_ch, mid_ch, dirate=1))
        setattr(self, f"rebnconv{depth}", REBNCONV(mid_ch, mid_ch, dirate=2))
        for i in range(depth - 1, 1, -1):
            setattr(self, f"rebnconv{i}d", REBNCONV(mid_ch * 2, mid_ch, dirate=1))
        self.rebnconv1d = REBNCONV(mid_ch * 2, out_ch, dirate=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        depth = self.depth
        hxin = self.rebnconvin(x)
        skips = [self.rebnconv1(hxin)]  # hx1 .. hx{depth-1}
        for i in range(1, depth - 1):
            hx = getattr(self, f"pool{i}")(skips[-1])
            skips.append(getattr(self, f"rebnconv{i + 1}")(hx))
        hx = getattr(self, f"rebnconv{depth}")(skips[-1])
        hx = getattr(self, f"rebnconv{depth - 1}d")(torch.cat((hx, skips[-1]), 1))
        for i in range(depth - 2, 0, -1):
            skip = skips[i - 1]
            hx = getattr(self, f"rebnconv{i}d")(torch.cat((_upsample_like(hx, skip), skip), 1))
        out: torch.Tensor = hx + hxin
        return out


class RSU7(RSU):
    """RSU of height 7 (BRIA's ``RSU7``)."""

    def __init__(self, in_ch: int = 3, mid_ch: int = 12, out_ch: int = 3) -> None:
        super().__init__(7, in_ch, mid_ch, out_ch)


class RSU6(RSU):
    """RSU of height 6 (BRIA's ``RSU6``)."""

    def __init__(self, in_ch: int = 3, mid_ch: int = 12, out_ch: int = 3) -> None:
        super().__init__(6, in_ch, mid_ch, out_ch)


class RSU5(RSU):
    """RSU of height 5 (BRIA's ``RSU5``)."""

    def __init__(self, in_ch: int = 3, mid_ch: int = 12, out_ch: int = 3) -> None:
        super().__init__(5, in_ch, mid_ch, out_ch)


class RSU4(RSU):
    """RSU of height 4 (BRIA's ``RSU4``)."""

    def __init__(self, in_ch: int = 3, mid_ch: int = 12, out_ch: int = 3) -> None:
        super().__init__(4, in_ch, mid_ch, out_ch)


class RSU4F(nn.Module):
    """Residual U-block without pooling: dilations 1, 2, 4, 8 (BRIA's ``RSU4F``)."""

    def __init__(self, in_ch: int = 3, mid_ch: int = 12, out_ch: int = 3) -> None:
        super().__init__()
        self.rebnconvin = REBNCONV(in_ch, out_ch, dirate=1)
        self.rebnconv1 = REBNCONV(out_ch, mid_ch, dirate=1)
        self.rebnconv2 = REBNCONV(mid_ch, mid_ch, dirate=2)
        self.rebnconv3 = REBNCONV(mid_ch, mid_ch, dirate=4)
        self.rebnconv4 = REBNCONV(mid_ch, mid_ch, dirate=8)
        self.rebnconv3d = REBNCONV(mid_ch * 2, mid_ch, dirate=4)
        self.rebnconv2d = REBNCONV(mid_ch * 2, mid_ch, dirate=2)
        self.rebnconv1d = REBNCONV(mid_ch * 2, out_ch, dirate=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hxin = self.rebnconvin(x)
        hx1 = self.rebnconv1(hxin)
        hx2 = self.rebnconv2(hx1)
        hx3 = self.rebnconv3(hx2)
        hx4 = self.rebnconv4(hx3)
        hx3d = self.rebnconv3d(torch.cat((hx4, hx3), 1))
        hx2d = self.rebnconv2d(torch.cat((hx3d, hx2), 1))
        hx1d = self.rebnconv1d(torch.cat((hx2d, hx1), 1))
        out: torch.Tensor = hx1d + hxin
        return out


def _block(stage: Stage) -> nn.Module:
    """The torch block of a stage of :mod:`rmbg.topology` (``RSU7``..``RSU4`` or ``RSU4F``)."""
    cls = {0: RSU4F, 4: RSU4, 5: RSU5, 6: RSU6, 7: RSU7}[stage.height]
    block: nn.Module = cls(stage.in_ch, stage.mid_ch, stage.out_ch)
    return block


class BriaRMBG(nn.Module):
    """BRIA RMBG-1.4 (44,046,790 parameters).

    Args:
        in_ch: Input channels (``in_ch`` of the checkpoint's config.json).
        out_ch: Output channels of the side heads (``out_ch`` of the config).
    """

    def __init__(self, in_ch: int = 3, out_ch: int = 1) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_ch, STEM.out_ch, 3, stride=2, padding=1)
        self.pool_in = _pool()  # in BRIA's module (no parameters), never used in forward
        for i, stage in enumerate(ENCODER, start=1):
            setattr(self, stage.name, _block(stage))
            if i < len(ENCODER):
                setattr(self, f"pool{i}{i + 1}", _pool())
        for stage in DECODER:
            setattr(self, stage.name, _block(stage))
        for side in SIDES:
            setattr(self, side.name, nn.Conv2d(side.in_ch, out_ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Run the network.

        Args:
            x: ``(N, in_ch, H, W)`` float input (RMBG-1.4: RGB in ``[-0.5, 0.5]``, 1024x1024).

        Returns:
            ``([sigmoid(d1), ..., sigmoid(d6)], [hx1d, hx2d, hx3d, hx4d, hx5d, hx6])``, every
            ``d`` of shape ``(N, out_ch, H, W)``; the mask is the first, ``result[0][0]``.
        """
        hx = self.conv_in(x)  # stage1 runs on the stride-2 output; pool_in is skipped
        skips: list[torch.Tensor] = []  # hx1 .. hx6
        for i, stage in enumerate(ENCODER, start=1):
            if i > 1:
                hx = getattr(self, f"pool{i - 1}{i}")(hx)
            hx = getattr(self, stage.name)(hx)
            skips.append(hx)
        features = [hx]  # hx6, then hx5d .. hx1d in front of it
        for stage, skip in zip(DECODER, reversed(skips[:-1]), strict=True):
            hx = getattr(self, stage.name)(torch.cat((_upsample_like(hx, skip), skip), 1))
            features.insert(0, hx)
        masks = [
            torch.sigmoid(_upsample_like(getattr(self, side.name)(f), x))
            for side, f in zip(SIDES, features, strict=True)
        ]
        return masks, features


class MaskOutput(nn.Module):
    """Wrap a BriaRMBG-like module so that it returns only ``sigmoid(d1)``, ``(N, 1, H, W)``.

    Accepts the module's ``([d1, ..., d6], [features])`` tuple, a transformers-style output whose
    first element is that list, or a module that already returns the mask tensor. Converting
    (tracing) this wrapper prunes the other 11 outputs.

    Args:
        module: The network to wrap (available as ``self.module``).
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: Any = self.module(x)
        first = out if isinstance(out, torch.Tensor) else out[0]
        if isinstance(first, (list, tuple)):
            first = first[0]
        if not (isinstance(first, torch.Tensor) and first.ndim == 4):
            raise TypeError(
                "The model must return the BriaRMBG output structure ([d1, ..., d6], [...]) with d1 "
                f"of shape (N, 1, H, W); got {type(out).__name__}. Pass a BriaRMBG (RMBG-1.4) "
                "module, e.g. one loaded with AutoModelForImageSegmentation.from_pretrained("
                "'briaai/RMBG-1.4', trust_remote_code=True)."
            )
        return first


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, Any]) -> None:
    """Load ``state_dict`` into ``model`` exactly, or explain what does not match.

    The 112 ``*.num_batches_tracked`` counters may be present or absent (the official file has
    them, most exports do not); absent ones keep the model's own values.

    Args:
        model: The network (a :class:`BriaRMBG`) to load into, in place.
        state_dict: Key -> numpy array or torch tensor, e.g. from
            :func:`rmbg.weights.read_state_dict`.

    Raises:
        CheckpointMismatchError: Another key is missing or unexpected, or a shape differs. The
            message names the first keys of each kind and how many there are.
    """
    expected = model.state_dict()
    given = dict(state_dict)
    counters = {k for k in expected if k.rsplit(".", 1)[-1] == _COUNTER}
    check_state_dict(
        given,
        {k: tuple(v.shape) for k, v in expected.items()},
        optional=counters,
        network=type(model).__name__,
    )
    tensors: dict[str, torch.Tensor] = {}
    with warnings.catch_warnings():
        # safetensors may hand out read-only arrays; load_state_dict copies them, never writes
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        for key, value in given.items():
            tensors[key] = (
                value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
            )
    for key in counters - set(tensors):
        tensors[key] = expected[key]
    model.load_state_dict(tensors, strict=True)


def _blank_model() -> BriaRMBG:
    """A BriaRMBG whose tensors are allocated but not initialised (every one is overwritten next).

    Skips the default Kaiming initialisation of 44M parameters; the batch counters are zeroed.
    """
    with torch.device("meta"):
        model = BriaRMBG()
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith(_COUNTER):
                buffer.zero_()
    return model


def build_model(state_dict: Mapping[str, Any]) -> BriaRMBG:
    """A float32 :class:`BriaRMBG` in eval mode with ``state_dict`` loaded strictly.

    Args:
        state_dict: Key -> numpy array (or torch tensor), with or without the 112
            ``num_batches_tracked`` counters; any float dtype (converted to float32).

    Raises:
        CheckpointMismatchError: The keys or shapes are not RMBG-1.4's.
    """
    model = _blank_model()
    load_state_dict_strict(model, state_dict)
    return model.float().eval()


def random_model(seed: int = 0) -> BriaRMBG:
    """A :class:`BriaRMBG` with random weights and random batch-norm statistics, in eval mode.

    Convolutions get He-normal weights, batch norms random affine parameters and running
    statistics, so that every layer (including the BN folding a converter does) is exercised. For
    parity tests on small inputs (64x64, 128x128); the output is not a meaningful mask.

    Args:
        seed: Seed of the private generator (the global torch RNG is left alone).
    """
    gen = torch.Generator().manual_seed(seed)
    model = _blank_model()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 4:  # conv weight
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif name.endswith(".bn_s1.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            else:  # conv and bn biases
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(1 + 0.5 * torch.rand(b.shape, generator=gen))
            elif not name.endswith(_COUNTER):  # pragma: no cover - BriaRMBG has no other buffers
                raise AssertionError(f"random_model does not know how to fill {name}")
    return model.eval()
