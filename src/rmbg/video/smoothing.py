"""Temporal smoothing of per-frame masks, and the two numbers that judge it.

A network run frame by frame gives masks that shimmer on edges that do not move (noise, a
changed min-max normalisation, a network that hesitates on a strand of hair). Averaging each mask
with the previous one removes that flicker but drags edges that *do* move behind the subject.
:class:`TemporalSmoother` blends only where the picture is still:

    motion  = |luma(t) - luma(t-1)|, averaged over blocks of ``block`` pixels (noise cancels)
    gate    = clip(1 - motion / motion_threshold, 0, 1)     # 1 where still, 0 where moving
    w       = strength * gate
    mask(t) = w * mask(t-1) + (1 - w) * raw(t)             # the previous *smoothed* mask

so a still edge converges to the mean of its raw masks while a moving edge follows the raw mask.
A scene cut moves every block, so nothing carries over it.

:func:`flicker` and :func:`lag` measure both effects on a clip whose moving subject is known (the
tests and ``benchmarks/video.py`` make one); ``docs/video.md`` has the figures the default comes
from.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .. import _validate as check
from ..errors import UnsupportedOptionError

__all__ = ["DEFAULT_SMOOTHING", "TemporalSmoother", "flicker", "lag"]

#: Default ``smoothing=``: measured on a noisy synthetic clip with a moving subject
#: (``benchmarks/video.py``; figures in ``docs/video.md``).
DEFAULT_SMOOTHING: float = 0.7

#: Mean absolute luma change (0..255) per block from which a block counts as fully moving.
DEFAULT_MOTION_THRESHOLD: float = 6.0

#: Side, in pixels, of the blocks over which motion is averaged.
DEFAULT_BLOCK: int = 8


def check_strength(value: object) -> float:
    """``smoothing=`` validated: a number in ``[0, 1)`` (0 turns smoothing off)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnsupportedOptionError(f"smoothing must be a number in [0, 1), not {value!r}.")
    strength = float(value)
    if not 0.0 <= strength < 1.0:
        raise UnsupportedOptionError(
            f"smoothing must be in [0, 1) (0 = off, 0.7 = default, 0.9 = strong), not {value!r}."
        )
    return strength


def _luma_blocks(rgb: NDArray[np.uint8], block: int) -> NDArray[np.float32]:
    """Mean luma (BT.601 weights) of each ``block x block`` tile; partial tiles at the edges."""
    h, w = rgb.shape[:2]
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    hb, wb = -(-h // block), -(-w // block)
    padded = np.pad(luma, ((0, hb * block - h), (0, wb * block - w)), mode="edge")
    out: NDArray[np.float32] = padded.reshape(hb, block, wb, block).mean(axis=(1, 3))
    return out


class TemporalSmoother:
    """Motion-gated blending of each mask with the previous (smoothed) one; feed frames in order.

    Args:
        strength: Weight of the previous mask where the picture is still, in ``[0, 1)``; 0 is
            off (each mask passes through untouched).
        motion_threshold: Mean absolute luma change of a block (0..255) from which it counts as
            moving (no blending at all); below it the weight falls linearly.
        block: Side of the blocks, in pixels, over which motion is averaged.
    """

    def __init__(
        self,
        strength: float,
        *,
        motion_threshold: float = DEFAULT_MOTION_THRESHOLD,
        block: int = DEFAULT_BLOCK,
    ) -> None:
        self.strength = check_strength(strength)
        if not motion_threshold > 0:
            raise UnsupportedOptionError(f"motion_threshold must be > 0, not {motion_threshold!r}")
        if not check.is_int(block) or block < 1:
            raise UnsupportedOptionError(f"block must be a positive int, not {block!r}")
        self.motion_threshold = float(motion_threshold)
        self.block = int(block)
        self._luma: NDArray[np.float32] | None = None
        self._mask: NDArray[np.float32] | None = None

    def reset(self) -> None:
        """Forget the previous frame (the next mask passes through)."""
        self._luma = None
        self._mask = None

    def __call__(self, rgb: NDArray[np.uint8], mask: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """The smoothed ``HxW`` uint8 mask of this frame (``rgb`` is the frame it was made from)."""
        if self.strength == 0.0:
            return mask
        luma = _luma_blocks(rgb, self.block)
        raw = mask.astype(np.float32)
        prev_luma, prev = self._luma, self._mask
        if prev_luma is None or prev is None or prev.shape != raw.shape:
            out = raw
        else:
            motion = np.abs(luma - prev_luma)
            gate = np.clip(1.0 - motion / self.motion_threshold, 0.0, 1.0)
            w = self.strength * np.repeat(np.repeat(gate, self.block, 0), self.block, 1)
            w = w[: raw.shape[0], : raw.shape[1]]
            out = raw + w * (prev - raw)
        self._luma, self._mask = luma, out
        result: NDArray[np.uint8] = np.rint(out).astype(np.uint8)
        return result


def flicker(masks: Sequence[NDArray[np.uint8]], still: NDArray[np.bool_]) -> float:
    """Mean absolute change of the masks between consecutive frames where the scene is still.

    Args:
        masks: The clip's masks, in order.
        still: ``HxW`` pixels that the moving subject never reaches (the truth is constant there).

    Returns:
        Grey levels (0..255); 0 for perfectly steady masks.
    """
    if len(masks) < 2 or not still.any():
        return 0.0
    diffs = [
        float(np.abs(b.astype(np.int16) - a.astype(np.int16))[still].mean())
        for a, b in itertools.pairwise(masks)
    ]
    return float(np.mean(diffs))


def lag(
    masks: Sequence[NDArray[np.uint8]],
    reference: Sequence[NDArray[np.uint8]],
    swept: Sequence[NDArray[np.bool_]],
) -> float:
    """How far smoothed masks trail unsmoothed ones where the subject's edge has just moved.

    Args:
        masks: Smoothed masks, in order.
        reference: The same frames' unsmoothed masks.
        swept: Per frame, the pixels the subject entered or left since the previous frame.

    Returns:
        Mean absolute difference in grey levels over the swept pixels (0: no drag at all).
    """
    values = [
        float(np.abs(m.astype(np.int16) - r.astype(np.int16))[s].mean())
        for m, r, s in zip(masks, reference, swept, strict=True)
        if s.any()
    ]
    return float(np.mean(values)) if values else 0.0
