"""Model facts as data: one frozen :class:`ModelSpec` per model, never a subclass per model."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Literal

__all__ = ["RMBG_1_4", "ModelSpec", "WeightsFile"]


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    """A published file of a model repository and its digest."""

    filename: str
    sha256: str
    size: int


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything the shared pre/post-processing and the loaders need to know about a model.

    Attributes:
        name: Human-readable model name.
        repo_id: Hugging Face Hub repository of the official checkpoint.
        input_size: Network input as ``(height, width)``.
        mean: Per-channel mean subtracted after scaling to ``[0, 1]``.
        std: Per-channel standard deviation divided after subtracting the mean.
        resample: Resize filter of the reference pipeline (torch ``F.interpolate`` bilinear,
            ``align_corners=False``, no antialias).
        truncate_resized_input: The reference casts the resized input to uint8 (truncation)
            before normalising; reproducing it is what makes the masks match exactly.
        weights: The official safetensors file (digest checked when the official repo is used).
        onnx_weights: Other published files by their repository path.
    """

    name: str
    repo_id: str
    input_size: tuple[int, int] = (1024, 1024)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resample: Literal["bilinear"] = "bilinear"
    truncate_resized_input: bool = True
    weights: WeightsFile | None = None
    onnx_weights: tuple[WeightsFile, ...] = ()

    def with_input_size(self, height: int, width: int) -> ModelSpec:
        """A copy of this spec with another network input size."""
        return dataclasses.replace(self, input_size=(int(height), int(width)))

    def digest(self) -> str:
        """A stable digest of the fields that change the computation (for cache keys)."""
        fields = {
            "input_size": self.input_size,
            "mean": self.mean,
            "std": self.std,
            "resample": self.resample,
            "truncate": self.truncate_resized_input,
        }
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


RMBG_1_4 = ModelSpec(
    name="RMBG-1.4",
    repo_id="briaai/RMBG-1.4",
    weights=WeightsFile(
        "model.safetensors",
        "46ef7fe46f2ae284d8f1aaa24bfa5fca5ef25a34e2c7caa890a0029eb100e87f",
        176_381_984,
    ),
    onnx_weights=(
        WeightsFile(
            "onnx/model.onnx",
            "8cafcf770b06757c4eaced21b1a88e57fd2b66de01b8045f35f01535ba742e0f",
            176_153_355,
        ),
        WeightsFile(
            "onnx/model_fp16.onnx",
            "9fdfdb41866d872e0acf4a010c35c1a8547bf0eebe0d1544406bbf1c824cb59d",
            88_217_533,
        ),
        WeightsFile(
            "onnx/model_quantized.onnx",
            "a6648479275dfd0ede0f3a8abc20aa5c437b394681b05e5af6d268250aaf40f3",
            44_403_226,
        ),
    ),
)
