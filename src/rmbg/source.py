"""Where a model comes from: :class:`ModelSource`, resolved once by :func:`rmbg.weights.resolve_model`.

A module of its own so that the weights resolver, the backends and the facade can all speak of a
model source without importing each other.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from .specs import RMBG_1_4, ModelSpec

__all__ = ["ModelSource", "SourceKind"]

SourceKind = Literal["checkpoint", "onnx", "ir", "module"]


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """Where a model comes from, resolved once by :func:`rmbg.weights.resolve_model`.

    Attributes:
        kind: ``"checkpoint"`` (a folder with config.json + model.safetensors, the Hub layout),
            ``"onnx"`` (an .onnx export), ``"ir"`` (an OpenVINO .xml/.bin pair) or ``"module"``
            (a torch module object handed in by the caller).
        path: The checkpoint folder or the .onnx/.xml file (``None`` for a module).
        weights_path: The file that holds the weights (model.safetensors, the .onnx, the .bin).
        weights_digest: sha256 of the weights (for a module: of its state dict), for cache keys.
        spec: The model facts (input size, normalisation...).
        repo_id: The Hub repository when it came from the Hub, else ``None``.
        revision: The Hub revision (commit hash) when it came from the Hub.
        module: The caller's torch module (kind ``"module"`` only).
    """

    kind: SourceKind
    spec: ModelSpec = RMBG_1_4
    path: Path | None = None
    weights_path: Path | None = None
    weights_digest: str = ""
    repo_id: str | None = None
    revision: str | None = None
    module: Any = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def files(self) -> tuple[Path, ...]:
        """The model files in use (checkpoint folder or file, weights file), for reports."""
        out: list[Path] = []
        for p in (self.path, self.weights_path):
            if p is not None and p not in out:
                out.append(p)
        return tuple(out)
