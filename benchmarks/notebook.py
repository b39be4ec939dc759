"""The OpenVINO notebook's two pipelines, written as the notebook writes them.

Source: openvino_notebooks ``rmbg-background-removal`` ("Run PyTorch model inference" and "Run
OpenVINO model inference" cells). Two substitutions, both forced by the offline benchmark machine:

- ``AutoModelForImageSegmentation.from_pretrained("briaai/RMBG-1.4", trust_remote_code=True)``
  becomes :func:`load_net`: the same BriaRMBG network (``rmbg.model``, RMBG-1.4's topology and key
  names) with the stand-in checkpoint's weights;
- ``utilities.py`` is BRIA's file, vendored verbatim in ``tests/reference.py``.

Everything else is the notebook's code: no ``torch.no_grad()`` around ``net(image)``, the image
decoded twice, ``ov.save_model`` with its default FP16 weight compression, the IR with all 12
outputs, ``compile_model`` on the device the notebook's dropdown defaults to (``"AUTO"``), and
``no_bg_image.save(...)`` at Pillow's default PNG level. Each pipeline is split into the stages
the benchmark reports (decode, pre, network, post, compose, encode) without changing what runs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/reference.py: BRIA's utilities.py

from tests.reference import postprocess_image, preprocess_image  # noqa: E402

model_input_size = [1024, 1024]


def load_net(checkpoint: Path) -> Any:
    """The BriaRMBG torch module with the checkpoint's weights (the notebook's ``net``)."""
    from rmbg.model import build_model
    from rmbg.weights import read_state_dict

    return build_model(read_state_dict(checkpoint / "model.safetensors"))


def convert(net: Any, ov_model_path: Path) -> None:
    """The notebook's conversion cell (run once; the notebook skips it if the file exists)."""
    import openvino as ov
    import torch

    image = preprocess_image(np.zeros((1024, 1024, 3), np.uint8), model_input_size)
    if not ov_model_path.exists():
        with torch.no_grad():  # tracing; the notebook's transformers module traces the same way
            ov_model = ov.convert_model(net, example_input=image, input=[1, 3, *model_input_size])
        ov.save_model(ov_model, ov_model_path)


def compile_ir(ov_model_path: Path, device: str = "AUTO") -> Any:
    """``core.compile_model(ov_model_path, device.value)`` with the dropdown's default."""
    import openvino as ov

    core = ov.Core()
    return core.compile_model(ov_model_path, device)


Stages = dict[str, float]


def _timed(stages: Stages, name: str, fn: Callable[[], Any]) -> Any:
    t = time.perf_counter()
    out = fn()
    stages[name] = stages.get(name, 0.0) + time.perf_counter() - t
    return out


def _save_result(st: Stages, result_image: Any, im_path: Path, out_path: Path) -> None:
    """The "save result" lines both notebook cells end with, stage by stage."""
    pil_im = _timed(st, "compose", lambda: Image.fromarray(result_image))
    no_bg_image = _timed(st, "compose", lambda: Image.new("RGBA", pil_im.size, (0, 0, 0, 0)))
    orig_image = _timed(st, "decode", lambda: _load(Image.open(im_path)))
    _timed(st, "compose", lambda: no_bg_image.paste(orig_image, mask=pil_im))
    _timed(st, "encode", lambda: no_bg_image.save(out_path))


def torch_pipeline(net: Any, im_path: Path, out_path: Path) -> Stages:
    """The "Run PyTorch model inference" cell, stage by stage."""
    st: Stages = {}
    # prepare input
    orig_im = _timed(st, "decode", lambda: np.array(Image.open(im_path)))
    orig_im_size = orig_im.shape[0:2]
    image = _timed(st, "pre", lambda: preprocess_image(orig_im, model_input_size))
    # inference
    result = _timed(st, "network", lambda: net(image))
    # post process
    result_image = _timed(st, "post", lambda: postprocess_image(result[0][0], orig_im_size))
    _save_result(st, result_image, im_path, out_path)
    return st


def openvino_pipeline(ov_compiled_model: Any, im_path: Path, out_path: Path) -> Stages:
    """The "Run OpenVINO model inference" cell (with the PyTorch cell's input prep), by stage."""
    import torch

    st: Stages = {}
    orig_im = _timed(st, "decode", lambda: np.array(Image.open(im_path)))
    orig_im_size = orig_im.shape[0:2]
    image = _timed(st, "pre", lambda: preprocess_image(orig_im, model_input_size))
    result = _timed(st, "network", lambda: ov_compiled_model(image)[0])
    # post process
    result_image = _timed(
        st, "post", lambda: postprocess_image(torch.from_numpy(result), orig_im_size)
    )
    _save_result(st, result_image, im_path, out_path)
    return st


def _load(im: Image.Image) -> Image.Image:
    """``Image.open`` is lazy; ``paste`` decodes. Decoding here puts its time under "decode"."""
    im.load()
    return im
