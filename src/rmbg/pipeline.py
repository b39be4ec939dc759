"""The shared mask pipeline around any engine: numpy pre-processing, the network, numpy
post-processing. Every backend's output goes through exactly this, which is what makes two
backends' masks comparable (and what INT8's evaluation runs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping

import numpy as np
from numpy.typing import NDArray

from .postprocess import Normalize, postprocess
from .preprocess import preprocess
from .specs import RMBG_1_4, ModelSpec

__all__ = ["Network", "predict"]

#: Anything that runs the network: float32 ``(N, 3, H, W)`` in, float32 probabilities out
#: (an :class:`rmbg.backends.base.Engine`).
Network = Callable[[NDArray[np.float32]], NDArray[np.float32]]


def predict(
    network: Network,
    rgb: NDArray[np.uint8],
    spec: ModelSpec = RMBG_1_4,
    *,
    normalize: Normalize = "minmax",
    seconds: MutableMapping[str, float] | None = None,
) -> NDArray[np.uint8]:
    """The reference mask of an ``HxWx3`` uint8 RGB array: ``HxW`` uint8, no shaping options.

    ``seconds``, when given, receives the wall time of ``preprocess``, ``network`` and
    ``postprocess``.
    """
    t0 = time.perf_counter()
    batch = preprocess(rgb, spec)
    t1 = time.perf_counter()
    raw = network(batch)
    t2 = time.perf_counter()
    mask = postprocess(raw, (rgb.shape[0], rgb.shape[1]), normalize=normalize)
    if seconds is not None:
        seconds.update(preprocess=t1 - t0, network=t2 - t1, postprocess=time.perf_counter() - t2)
    return mask
