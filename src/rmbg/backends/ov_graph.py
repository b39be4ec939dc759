"""BriaRMBG as an OpenVINO model, built from a state dict with OpenVINO's graph API (no torch).

The OpenVINO backend builds its IR from a checkpoint with :func:`build_model` instead of tracing
the torch module: reading the weights with numpy and writing the graph op by op takes about a
second, where importing torch, loading the module, tracing and converting it took about 30
(docs/performance.md). The graph is the torch module's computation, op for op, following the same
tables (:mod:`rmbg.topology`):

- every BatchNorm is folded into the convolution before it, in float64, then cast to float32:
  ``w' = w * s`` and ``b' = (b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)`` (eval
  mode, running statistics), :func:`fold_batchnorm`;
- max pooling is 2x2, stride 2, ``ceil_torch`` rounding (``ceil_mode=True``);
- every upsampling is ``Interpolate`` ``linear_onnx`` with ``pytorch_half_pixel`` coordinates to
  the exact size of the tensor it is concatenated with, as ``F.interpolate(mode="bilinear")``
  (align_corners=False) and as OpenVINO's own PyTorch frontend converts it;
- only the mask is built: ``sigmoid`` of ``side1`` upsampled to the input size (d1). The other five
  side heads do not contribute to it and are left out.

The shape is static, ``1x3xHxW`` from the model spec's input size (any size the torch module
takes; the tests compare both on several).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import openvino as ov
from numpy.typing import NDArray

from ..topology import (
    BN_EPS,
    DECODER,
    ENCODER,
    SIDES,
    STEM,
    Conv,
    Stage,
    check_state_dict,
    counter_keys,
    rebnconvs,
    state_dict_shapes,
)

try:  # OpenVINO >= 2025 exposes the opsets at the top level; 2024 under openvino.runtime
    import openvino.opset11 as _ops11
    import openvino.opset14 as _ops
except ImportError:  # pragma: no cover - depends on the OpenVINO version
    import openvino.runtime.opset11 as _ops11
    import openvino.runtime.opset14 as _ops

__all__ = ["build_model", "fold_batchnorm"]

_Node = Any  # an OpenVINO node output (openvino ships no type information)


def fold_batchnorm(
    weight: NDArray[Any],
    bias: NDArray[Any],
    gamma: NDArray[Any],
    beta: NDArray[Any],
    mean: NDArray[Any],
    var: NDArray[Any],
    eps: float = BN_EPS,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Fold an eval-mode BatchNorm2d into the convolution before it.

    Computed in float64 and rounded once to float32, so the folded layer is as close to
    ``bn(conv(x))`` as float32 weights can be.

    Args:
        weight: Convolution weight ``(out, in, kh, kw)``.
        bias: Convolution bias ``(out,)``.
        gamma: BatchNorm weight ``(out,)``.
        beta: BatchNorm bias ``(out,)``.
        mean: BatchNorm running mean ``(out,)``.
        var: BatchNorm running variance ``(out,)``.
        eps: BatchNorm epsilon (torch's default, that of RMBG-1.4).

    Returns:
        The folded float32 weight and bias.
    """
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    w = np.asarray(weight, np.float64) * scale[:, None, None, None]
    b = (np.asarray(bias, np.float64) - np.asarray(mean, np.float64)) * scale + np.asarray(
        beta, np.float64
    )
    return w.astype(np.float32), b.astype(np.float32)


class _Builder:
    """Writes the graph; ``state`` is the checked state dict."""

    def __init__(self, state: Mapping[str, NDArray[Any]]) -> None:
        self.state = state

    def conv(
        self,
        x: _Node,
        weight: NDArray[Any],
        bias: NDArray[Any],
        *,
        stride: int = 1,
        dilation: int = 1,
        name: str,
    ) -> _Node:
        """3x3 convolution with bias, padding = dilation (the network's only kind)."""
        w = _ops.constant(np.ascontiguousarray(weight, np.float32), name=f"{name}.weight")
        y = _ops.convolution(
            x,
            w,
            strides=[stride, stride],
            pads_begin=[dilation, dilation],
            pads_end=[dilation, dilation],
            dilations=[dilation, dilation],
            name=name,
        )
        b = _ops.constant(np.asarray(bias, np.float32).reshape(1, -1, 1, 1), name=f"{name}.bias")
        return _ops.add(y, b, name=f"{name}.add")

    def plain_conv(self, x: _Node, c: Conv, *, stride: int = 1) -> _Node:
        s = self.state
        return self.conv(x, s[f"{c.name}.weight"], s[f"{c.name}.bias"], stride=stride, name=c.name)

    def rebnconv(self, x: _Node, prefix: str, c: Conv) -> _Node:
        """``conv_s1`` -> ``bn_s1`` (folded) -> ReLU."""
        s = self.state
        conv, bn = f"{prefix}.{c.name}.conv_s1", f"{prefix}.{c.name}.bn_s1"
        w, b = fold_batchnorm(
            s[f"{conv}.weight"],
            s[f"{conv}.bias"],
            s[f"{bn}.weight"],
            s[f"{bn}.bias"],
            s[f"{bn}.running_mean"],
            s[f"{bn}.running_var"],
        )
        y = self.conv(x, w, b, dilation=c.dilation, name=f"{prefix}.{c.name}")
        return _ops.relu(y, name=f"{prefix}.{c.name}.relu")

    def block(self, x: _Node, stage: Stage) -> _Node:
        """A residual U-block: the same computation as ``rmbg.model.RSU`` / ``RSU4F``."""
        convs = {c.name: c for c in rebnconvs(stage)}

        def run(name: str, inp: _Node) -> _Node:
            return self.rebnconv(inp, stage.name, convs[name])

        hxin = run("rebnconvin", x)
        if stage.height == 0:  # RSU4F: no pooling, no upsampling
            hx1 = run("rebnconv1", hxin)
            hx2 = run("rebnconv2", hx1)
            hx3 = run("rebnconv3", hx2)
            hx4 = run("rebnconv4", hx3)
            hx3d = run("rebnconv3d", _cat(hx4, hx3))
            hx2d = run("rebnconv2d", _cat(hx3d, hx2))
            hx = run("rebnconv1d", _cat(hx2d, hx1))
        else:
            h = stage.height
            skips = [run("rebnconv1", hxin)]
            for i in range(1, h - 1):
                skips.append(run(f"rebnconv{i + 1}", _pool(skips[-1], f"{stage.name}.pool{i}")))
            hx = run(f"rebnconv{h}", skips[-1])
            hx = run(f"rebnconv{h - 1}d", _cat(hx, skips[-1]))
            for i in range(h - 2, 0, -1):
                skip = skips[i - 1]
                hx = run(f"rebnconv{i}d", _cat(_upsample_like(hx, skip), skip))
        return _ops.add(hx, hxin, name=f"{stage.name}.residual")


def _cat(a: _Node, b: _Node) -> _Node:
    return _ops.concat([a, b], axis=1)


def _pool(x: _Node, name: str) -> _Node:
    """MaxPool2d(2, stride=2, ceil_mode=True)."""
    pooled = _ops.max_pool(
        x,
        strides=[2, 2],
        dilations=[1, 1],
        pads_begin=[0, 0],
        pads_end=[0, 0],
        kernel_shape=[2, 2],
        rounding_type="ceil_torch",
        name=name,
    )
    return pooled.output(0)


def _spatial(x: _Node) -> tuple[int, int]:
    """Height and width of a node's (first) output or of an output: static, known at build time."""
    shape = x.get_shape() if isinstance(x, ov.Output) else x.get_output_shape(0)
    return int(shape[2]), int(shape[3])


def _resize(x: _Node, size: tuple[int, int]) -> _Node:
    """``F.interpolate(x, size, mode="bilinear")`` (align_corners=False): identity at equal size."""
    if _spatial(x) == size:
        return x
    return _ops11.interpolate(
        x,
        np.array(size, np.int64),
        mode="linear_onnx",
        shape_calculation_mode="sizes",
        coordinate_transformation_mode="pytorch_half_pixel",
        antialias=False,
        axes=np.array([2, 3], np.int64),
    )


def _upsample_like(src: _Node, tar: _Node) -> _Node:
    return _resize(src, _spatial(tar))


def build_model(
    state_dict: Mapping[str, NDArray[Any]], input_size: tuple[int, int] = (1024, 1024)
) -> ov.Model:
    """The BriaRMBG mask network (``sigmoid(d1)``) as an OpenVINO model, without torch.

    Args:
        state_dict: RMBG-1.4's state dict as numpy arrays (e.g. from
            :func:`rmbg.weights.read_state_dict`), with or without the 112
            ``num_batches_tracked`` counters; any float dtype.
        input_size: ``(height, width)`` of the network input; the model's input is a static
            float32 ``1x3xHxW`` named ``x``, its one output ``(1, 1, H, W)`` probabilities.

    Raises:
        CheckpointMismatchError: The keys or shapes are not RMBG-1.4's (the same check and message
            as the torch module's loader).
    """
    check_state_dict(state_dict, state_dict_shapes(), optional=counter_keys())
    height, width = (int(v) for v in input_size)
    if height < 1 or width < 1:
        raise ValueError(f"input_size must be positive, not {input_size!r}.")
    b = _Builder(state_dict)
    x = _ops.parameter([1, STEM.in_ch, height, width], np.float32, name="x")
    x.output(0).get_tensor().set_names({"x"})
    hx = b.plain_conv(x, STEM, stride=2)  # stage1 runs on the stride-2 output (pool_in unused)
    skips: list[_Node] = []  # hx1 .. hx6
    for i, stage in enumerate(ENCODER, start=1):
        if i > 1:
            hx = _pool(hx, f"pool{i - 1}{i}")
        hx = b.block(hx, stage)
        skips.append(hx)
    for stage, skip in zip(DECODER, reversed(skips[:-1]), strict=True):
        hx = b.block(_cat(_upsample_like(hx, skip), skip), stage)
    side1 = b.plain_conv(hx, SIDES[0])  # hx1d -> d1; side2..side6 do not reach the mask
    mask = _ops.sigmoid(_resize(side1, (height, width)), name="d1")
    result = _ops.result(mask, name="mask")
    return ov.Model([result], [x], "BriaRMBG")
