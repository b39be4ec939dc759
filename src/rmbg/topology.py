"""The BriaRMBG (RMBG-1.4) topology as data, and the strict state-dict check. No torch, no OpenVINO.

One description of the network that both implementations follow: :mod:`rmbg.model` (the torch
reference) builds its stages from :data:`ENCODER`, :data:`DECODER` and :data:`SIDES`, and
:mod:`rmbg.backends.ov_graph` builds the OpenVINO graph from the same tables. A test checks that
:func:`state_dict_shapes` equals the torch module's state dict, key for key and shape for shape.

Every convolution of the network is 3x3. A ``REBNCONV`` is ``conv_s1`` (bias, padding = dilation)
-> ``bn_s1`` (BatchNorm2d, eps :data:`BN_EPS`) -> ReLU. A residual U-block of height ``L``
(``RSU7``..``RSU4``) and the pooling-free ``RSU4F`` are lists of REBNCONVs, see :func:`rebnconvs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Set
from typing import Any

import numpy as np

from .errors import CheckpointMismatchError

__all__ = [
    "BN_EPS",
    "COUNTER",
    "DECODER",
    "ENCODER",
    "PARAMETERS",
    "SIDES",
    "STATE_DICT_KEYS",
    "STEM",
    "Conv",
    "Stage",
    "check_state_dict",
    "counter_keys",
    "rebnconvs",
    "state_dict_shapes",
]

#: Number of parameters of RMBG-1.4 (buffers not included).
PARAMETERS = 44_046_790
#: State-dict entries of the official file: 686 tensors + 112 ``num_batches_tracked`` counters.
STATE_DICT_KEYS = 798
#: Name of the batch counters, which a checkpoint may or may not carry.
COUNTER = "num_batches_tracked"
#: ``eps`` of every BatchNorm2d (torch's default, as in BRIA's ``briarmbg.py``).
BN_EPS = 1e-5
_SHOWN = 10


@dataclasses.dataclass(frozen=True)
class Stage:
    """One residual U-block of the network.

    Attributes:
        name: Module name (``"stage1"``, ``"stage5d"``...).
        height: 7, 6, 5 or 4 for ``RSU7``..``RSU4``; ``0`` for ``RSU4F`` (no pooling, dilations
            1, 2, 4, 8).
        in_ch: Input channels.
        mid_ch: Channels inside the block.
        out_ch: Output channels.
    """

    name: str
    height: int
    in_ch: int
    mid_ch: int
    out_ch: int

    @property
    def kind(self) -> str:
        """BRIA's class name: ``"RSU7"``..``"RSU4"`` or ``"RSU4F"``."""
        return f"RSU{self.height}" if self.height else "RSU4F"


@dataclasses.dataclass(frozen=True)
class Conv:
    """A REBNCONV inside a block: module name, channels and dilation."""

    name: str
    in_ch: int
    out_ch: int
    dilation: int


#: ``conv_in``: Conv2d(3, 64, 3, stride=2, padding=1), no batch norm, no ReLU.
STEM = Conv("conv_in", 3, 64, 1)
#: The U, one row a level, top first: the block height (0: RSU4F) and the encoder stage's
#: channels in/mid/out, then the mid/out of the level's decoder stage (``stageNd``), which has the
#: encoder's height and takes cat(upsampled deeper output, this level's skip): 2 * out channels.
#: The deepest level (``stage6``) has no decoder stage.
_LEVELS: tuple[tuple[int, int, int, int, int | None, int | None], ...] = (
    (7, 64, 32, 64, 16, 64),
    (6, 64, 32, 128, 32, 64),
    (5, 128, 64, 256, 64, 128),
    (4, 256, 128, 512, 128, 256),
    (0, 512, 256, 512, 256, 512),
    (0, 512, 256, 512, None, None),
)
#: Encoder stages; a MaxPool2d(2, 2, ceil_mode=True) (``pool12``..``pool56``) sits between two.
ENCODER = tuple(
    Stage(f"stage{n}", height, i, m, o) for n, (height, i, m, o, _, _) in enumerate(_LEVELS, 1)
)
#: Decoder stages, deepest first; each takes cat(upsampled deeper output, encoder skip).
DECODER = tuple(
    Stage(f"stage{n}d", height, 2 * o, dm, do)
    for n, (height, _, _, o, dm, do) in reversed(list(enumerate(_LEVELS, 1)))
    if dm is not None and do is not None
)
#: Side heads ``side1``..``side6`` (Conv2d(ch, out_ch, 3, padding=1)) on hx1d..hx5d, hx6.
SIDES = tuple(
    Conv(f"side{n}", stage.out_ch, 1, 1)
    for n, stage in enumerate((*reversed(DECODER), ENCODER[-1]), 1)
)


def rebnconvs(stage: Stage) -> tuple[Conv, ...]:
    """The REBNCONVs of a block in BRIA's registration order (the state dict's order).

    RSU-L: ``rebnconvin`` (in->out), ``rebnconv1`` (out->mid), ``rebnconv2..L-1`` (mid->mid),
    ``rebnconvL`` (mid->mid, dilation 2), ``rebnconvL-1d..2d`` (2*mid->mid), ``rebnconv1d``
    (2*mid->out). RSU4F: the same names for L = 4 with dilations 1, 2, 4, 8 down and 4, 2, 1 up.
    """
    i, m, o = stage.in_ch, stage.mid_ch, stage.out_ch
    if stage.height == 0:
        return (
            Conv("rebnconvin", i, o, 1),
            Conv("rebnconv1", o, m, 1),
            Conv("rebnconv2", m, m, 2),
            Conv("rebnconv3", m, m, 4),
            Conv("rebnconv4", m, m, 8),
            Conv("rebnconv3d", 2 * m, m, 4),
            Conv("rebnconv2d", 2 * m, m, 2),
            Conv("rebnconv1d", 2 * m, o, 1),
        )
    h = stage.height
    if h < 3:
        raise ValueError(f"An RSU block needs a height of at least 3, not {h}.")
    return (
        Conv("rebnconvin", i, o, 1),
        Conv("rebnconv1", o, m, 1),
        *(Conv(f"rebnconv{k}", m, m, 1) for k in range(2, h)),
        Conv(f"rebnconv{h}", m, m, 2),
        *(Conv(f"rebnconv{k}d", 2 * m, m, 1) for k in range(h - 1, 1, -1)),
        Conv("rebnconv1d", 2 * m, o, 1),
    )


def state_dict_shapes() -> dict[str, tuple[int, ...]]:
    """Every entry of RMBG-1.4's state dict and its shape: the 798 of the official file.

    In the torch module's order: ``conv_in``, the encoder and decoder stages, the side heads. The
    112 batch counters (shape ``()``, :func:`counter_keys`) are optional in a checkpoint.
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(prefix: str, c: Conv) -> None:
        shapes[f"{prefix}.weight"] = (c.out_ch, c.in_ch, 3, 3)
        shapes[f"{prefix}.bias"] = (c.out_ch,)

    conv(STEM.name, STEM)
    for stage in (*ENCODER, *DECODER):
        for c in rebnconvs(stage):
            base = f"{stage.name}.{c.name}"
            conv(f"{base}.conv_s1", c)
            for field in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{base}.bn_s1.{field}"] = (c.out_ch,)
            shapes[f"{base}.bn_s1.{COUNTER}"] = ()
    for side in SIDES:
        conv(side.name, side)
    return shapes


def counter_keys() -> frozenset[str]:
    """The 112 ``*.bn_s1.num_batches_tracked`` keys (optional in a checkpoint)."""
    return frozenset(key for key in state_dict_shapes() if key.endswith(f".{COUNTER}"))


def _listing(label: str, items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    more = f", ... and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return f"{len(items)} {label} ({shown}{more})"


def _prefix_hint(missing: list[str], unexpected: list[str]) -> str:
    """Explain the common case of keys saved from a wrapper (``module.``, ``model.``...)."""
    if not (missing and unexpected):
        return ""
    prefixes = {k.split(".", 1)[0] + "." for k in unexpected if "." in k}
    if len(prefixes) != 1:
        return ""
    prefix = prefixes.pop()
    stripped = {k[len(prefix) :] for k in unexpected if k.startswith(prefix)}
    if not set(missing) <= stripped:
        return ""
    return (
        f" Every unexpected key starts with {prefix!r}: the weights were saved from a wrapper "
        "module; strip that prefix from the keys (or save the inner BriaRMBG's state_dict)."
    )


def check_state_dict(
    given: Mapping[str, Any],
    expected: Mapping[str, tuple[int, ...]],
    *,
    optional: Set[str] = frozenset(),
    network: str = "BriaRMBG",
) -> None:
    """Check that a checkpoint has exactly the expected keys and shapes, or explain what differs.

    Args:
        given: Key -> array (anything ``numpy.shape`` understands: numpy arrays, torch tensors).
        expected: Key -> shape of the network, e.g. :func:`state_dict_shapes`.
        optional: Keys of ``expected`` that may be absent (the batch counters).
        network: The network's name, for the message.

    Raises:
        CheckpointMismatchError: A key is missing or unexpected, or a shape differs. The message
            names the first keys of each kind and how many there are.
    """
    missing = sorted(set(expected) - set(given) - set(optional))
    unexpected = sorted(set(given) - set(expected))
    shapes = sorted(
        f"{k} {tuple(np.shape(given[k]))} in the checkpoint, {tuple(expected[k])} in the network"
        for k in set(given) & set(expected)
        if tuple(np.shape(given[k])) != tuple(expected[k])
    )
    if not (missing or unexpected or shapes):
        return
    parts = [
        _listing(label, items)
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", shapes),
        )
        if items
    ]
    raise CheckpointMismatchError(
        f"The checkpoint does not fit the {network} (RMBG-1.4) network: "
        + "; ".join(parts)
        + "."
        + _prefix_hint(missing, unexpected)
        + " Use the model.safetensors of briaai/RMBG-1.4 or a fine-tune of the same "
        "architecture (its keys have no prefix, e.g. 'conv_in.weight', 'side1.bias')."
    )
