"""The BriaRMBG network (IS-Net / DIS family) with RMBG-1.4's exact module and state-dict names.

Importing this module imports torch; the rest of rmbg imports it lazily. The structure follows
BRIA's ``briarmbg.py``: ``conv_in`` (stride 2; ``pool_in`` exists but is unused, as in the
checkpoint), six encoder stages of residual U-blocks (RSU7..RSU4, RSU4F), five decoder stages and
six side heads, each upsampled bilinearly to the input size and passed through a sigmoid.
``forward`` returns ``([sigmoid(d1), ..., sigmoid(d6)], [hx1d, hx2d, hx3d, hx4d, hx5d, hx6])``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import CheckpointMismatchError

__all__ = [
    "REBNCONV",
    "RSU",
    "RSU4F",
    "BriaRMBG",
    "MaskOutput",
    "build_model",
    "load_state_dict_strict",
    "random_model",
]

PARAMETERS = 44_046_790


def _upsample_like(src: torch.Tensor, tar: torch.Tensor) -> torch.Tensor:
    return F.interpolate(src, size=tar.shape[2:], mode="bilinear")


class REBNCONV(nn.Module):
    """3x3 convolution (dilated), batch norm, ReLU."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, dirate: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.conv_s1 = nn.Conv2d(
            in_ch, out_ch, 3, padding=1 * dirate, dilation=1 * dirate, stride=stride
        )
        self.bn_s1 = nn.BatchNorm2d(out_ch)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Module):
    """Residual U-block of height ``depth`` (RSU7, RSU6, RSU5, RSU4), RMBG-1.4's names.

    Encoder ``rebnconv1..rebnconv{depth-1}`` with ``pool1..pool{depth-2}`` between them, a dilated
    ``rebnconv{depth}`` at the bottom, decoder ``rebnconv{depth-1}d..rebnconv1d``; returns
    ``hx1d + hxin``.
    """

    def __init__(self, depth: int, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.depth = depth
        self.rebnconvin = REBNCONV(in_ch, out_ch, dirate=1)
        self.rebnconv1 = REBNCONV(out_ch, mid_ch, dirate=1)
        for i in range(1, depth - 1):
            setattr(self, f"pool{i}", nn.MaxPool2d(2, stride=2, ceil_mode=True))
            setattr(self, f"rebnconv{i + 1}", REBNCONV(mid_ch, mid_ch, dirate=1))
        setattr(self, f"rebnconv{depth}", REBNCONV(mid_ch, mid_ch, dirate=2))
        for i in range(depth - 1, 1, -1):
            setattr(self, f"rebnconv{i}d", REBNCONV(mid_ch * 2, mid_ch, dirate=1))
        self.rebnconv1d = REBNCONV(mid_ch * 2, out_ch, dirate=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        depth = self.depth
        hxin = self.rebnconvin(x)
        skips = [self.rebnconv1(hxin)]
        for i in range(1, depth - 1):
            hx = getattr(self, f"pool{i}")(skips[-1])
            skips.append(getattr(self, f"rebnconv{i + 1}")(hx))
        hx = getattr(self, f"rebnconv{depth}")(skips[-1])
        hx = getattr(self, f"rebnconv{depth - 1}d")(torch.cat((hx, skips[-1]), 1))
        for i in range(depth - 2, 0, -1):
            skip = skips[i - 1]
            hx = getattr(self, f"rebnconv{i}d")(torch.cat((_upsample_like(hx, skip), skip), 1))
        return hx + hxin


class RSU4F(nn.Module):
    """Residual U-block without pooling: dilations 1, 2, 4, 8."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
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
        return hx1d + hxin


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(2, stride=2, ceil_mode=True)


class BriaRMBG(nn.Module):
    """BRIA RMBG-1.4 (44,046,790 parameters). ``in_ch``/``out_ch`` as in the checkpoint's config."""

    def __init__(self, in_ch: int = 3, out_ch: int = 1) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_ch, 64, 3, stride=2, padding=1)
        self.pool_in = _pool()  # in the checkpoint's module, never used in forward
        self.stage1 = RSU(7, 64, 32, 64)
        self.pool12 = _pool()
        self.stage2 = RSU(6, 64, 32, 128)
        self.pool23 = _pool()
        self.stage3 = RSU(5, 128, 64, 256)
        self.pool34 = _pool()
        self.stage4 = RSU(4, 256, 128, 512)
        self.pool45 = _pool()
        self.stage5 = RSU4F(512, 256, 512)
        self.pool56 = _pool()
        self.stage6 = RSU4F(512, 256, 512)
        self.stage5d = RSU4F(1024, 256, 512)
        self.stage4d = RSU(4, 1024, 128, 256)
        self.stage3d = RSU(5, 512, 64, 128)
        self.stage2d = RSU(6, 256, 32, 64)
        self.stage1d = RSU(7, 128, 16, 64)
        self.side1 = nn.Conv2d(64, out_ch, 3, padding=1)
        self.side2 = nn.Conv2d(64, out_ch, 3, padding=1)
        self.side3 = nn.Conv2d(128, out_ch, 3, padding=1)
        self.side4 = nn.Conv2d(256, out_ch, 3, padding=1)
        self.side5 = nn.Conv2d(512, out_ch, 3, padding=1)
        self.side6 = nn.Conv2d(512, out_ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        hxin = self.conv_in(x)
        hx1 = self.stage1(hxin)
        hx2 = self.stage2(self.pool12(hx1))
        hx3 = self.stage3(self.pool23(hx2))
        hx4 = self.stage4(self.pool34(hx3))
        hx5 = self.stage5(self.pool45(hx4))
        hx6 = self.stage6(self.pool56(hx5))
        hx5d = self.stage5d(torch.cat((_upsample_like(hx6, hx5), hx5), 1))
        hx4d = self.stage4d(torch.cat((_upsample_like(hx5d, hx4), hx4), 1))
        hx3d = self.stage3d(torch.cat((_upsample_like(hx4d, hx3), hx3), 1))
        hx2d = self.stage2d(torch.cat((_upsample_like(hx3d, hx2), hx2), 1))
        hx1d = self.stage1d(torch.cat((_upsample_like(hx2d, hx1), hx1), 1))
        features = [hx1d, hx2d, hx3d, hx4d, hx5d, hx6]
        sides = (self.side1, self.side2, self.side3, self.side4, self.side5, self.side6)
        ds = [
            torch.sigmoid(_upsample_like(side(f), x))
            for side, f in zip(sides, features, strict=True)
        ]
        return ds, features


class MaskOutput(nn.Module):
    """Wrap a BriaRMBG-like module so it returns only ``sigmoid(d1)``, ``(N, 1, H, W)``.

    Accepts the module's ``(list_of_masks, list_of_features)`` tuple, or a transformers-style
    output whose first element is that list. Converting this wrapper prunes the other 11 outputs.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: Any = self.module(x)
        first = out[0]
        if isinstance(first, (list, tuple)):
            first = first[0]
        if not (isinstance(first, torch.Tensor) and first.ndim == 4):
            raise TypeError(
                "The model must return the BriaRMBG output structure ([d1, ..., d6], [...]) with d1 "
                f"of shape (N, 1, H, W); got {type(out).__name__}."
            )
        return first


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, Any]) -> None:
    """Load ``state_dict`` into ``model``, exactly.

    The 112 ``*.num_batches_tracked`` counters may be present or absent (the official file has
    them, exports often do not); any other missing or unexpected key, or a shape mismatch, raises
    :class:`~rmbg.errors.CheckpointMismatchError` naming the keys.
    """
    expected = model.state_dict()
    given = dict(state_dict)
    counters = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(given) - counters)
    unexpected = sorted(set(given) - set(expected))
    shapes = sorted(
        f"{k}: checkpoint {tuple(np.shape(given[k]))} vs network {tuple(expected[k].shape)}"
        for k in set(given) & set(expected)
        if tuple(np.shape(given[k])) != tuple(expected[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        for label, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatches", shapes),
        ):
            if items:
                shown = ", ".join(items[:10]) + (
                    f", ... ({len(items) - 10} more)" if len(items) > 10 else ""
                )
                parts.append(f"{len(items)} {label}: {shown}")
        raise CheckpointMismatchError(
            "The checkpoint does not match the BriaRMBG (RMBG-1.4) network: "
            + "; ".join(parts)
            + ". Check that it is an RMBG-1.4 checkpoint (model.safetensors of briaai/RMBG-1.4 or "
            "a fine-tune with the same architecture)."
        )
    tensors = {
        k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v))
        for k, v in given.items()
    }
    for k in counters - set(tensors):
        tensors[k] = expected[k]
    model.load_state_dict(tensors, strict=True)


def build_model(state_dict: Mapping[str, Any]) -> BriaRMBG:
    """A float32 BriaRMBG in eval mode with ``state_dict`` loaded strictly."""
    model = BriaRMBG()
    load_state_dict_strict(model, state_dict)
    return model.float().eval()


def random_model(seed: int = 0) -> BriaRMBG:
    """A BriaRMBG with random weights and random batch-norm statistics, in eval mode (for tests)."""
    gen = torch.Generator().manual_seed(seed)
    model = BriaRMBG()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.ndim == 4:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif ".bn_s1.weight" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(1 + 0.5 * torch.rand(b.shape, generator=gen))
    return model.eval()
