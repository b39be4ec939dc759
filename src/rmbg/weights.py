"""Find, download and verify model weights. Never imports torch.

:func:`resolve_model` turns what the user passed as ``model`` into a :class:`ModelSource`:

- a local checkpoint folder (``config.json`` + ``model.safetensors``, the Hub layout) or the
  ``.safetensors`` file itself;
- an ``.onnx`` export or an OpenVINO ``.xml`` IR (with its ``.bin``);
- a torch module (anything with ``state_dict``), digested from its state dict;
- a Hugging Face Hub repo id, downloaded through ``huggingface_hub`` (its cache, ``HF_HOME``,
  ``HF_HUB_OFFLINE``, ``HF_TOKEN``). Only ``model.safetensors`` is fetched, never the pickle; for
  the official repository its sha256 is checked against the published digest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .backends.base import ModelSource
from .cache import default_cache_dir
from .errors import ChecksumMismatchError, GatedModelError, ModelError, ModelNotFoundError
from .specs import RMBG_1_4, ModelSpec

__all__ = ["default_cache_dir", "download", "file_sha256", "read_state_dict", "resolve_model"]

logger = logging.getLogger("rmbg")

_REPO_ID = re.compile(r"^[\w.\-]+/[\w.\-]+$")
_ACCEPTED = (
    "a Hugging Face repo id such as 'briaai/RMBG-1.4', a checkpoint folder (config.json + "
    "model.safetensors), a .safetensors file, an .onnx file, an OpenVINO .xml IR, or a torch module"
)
_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, hashed once per process (memoised by path, size and mtime).

    A small JSON sidecar in the rmbg cache remembers digests across processes, so a new process
    does not re-read a 176 MB checkpoint just to key its cache.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    with _digests_lock:
        if key in _digests:
            return _digests[key]
    sidecar = default_cache_dir() / "digests.json"
    known = _read_sidecar(sidecar)
    skey = f"{key[0]}|{key[1]}|{key[2]}"
    digest = known.get(skey)
    if not (isinstance(digest, str) and len(digest) == 64):
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
        known[skey] = digest
        _write_sidecar(sidecar, known)
    with _digests_lock:
        _digests[key] = digest
    return digest


def _read_sidecar(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_sidecar(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(dict(list(data.items())[-256:])))
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache only costs re-hashing
        logger.debug("digest sidecar not written: %s", exc)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file as numpy arrays (no torch, no pickle)."""
    from safetensors.numpy import load_file

    try:
        return dict(load_file(str(path)))
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"No weights file at {path}.") from exc
    except Exception as exc:
        raise ModelError(
            f"{path} is not a readable safetensors file ({exc}). It may be truncated or corrupt: "
            "download it again."
        ) from exc


def _module_digest(module: Any) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        arr = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{arr.dtype}|{tuple(arr.shape)}|".encode())
        h.update(arr.view(-1).view(dtype=__import__("torch").uint8).numpy().tobytes())
    h.update(type(module).__qualname__.encode())
    return h.hexdigest()


def _is_torch_module(obj: Any) -> bool:
    torch = __import__("sys").modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def resolve_model(
    model: str | os.PathLike[str] | Any = RMBG_1_4.repo_id,
    *,
    spec: ModelSpec = RMBG_1_4,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    verify: bool | None = None,
) -> ModelSource:
    """Resolve ``model`` into a :class:`~rmbg.ModelSource` (downloading from the Hub if needed).

    Args:
        model: See the module docstring for the accepted forms.
        spec: The model facts; its ``repo_id`` and ``weights`` digest identify the official file.
        revision: Hub revision (branch, tag or commit).
        token: Hub token (default: ``HF_TOKEN`` or the stored login).
        cache_dir: Hugging Face cache folder (default: huggingface_hub's, ``HF_HOME``).
        verify: Check the official digest; ``None`` checks when ``model`` is the official repo.

    Raises:
        ModelNotFoundError: No such path, or no cached copy while offline.
        GatedModelError: The Hub refused the download (licence not accepted, bad token).
        ChecksumMismatchError: The downloaded file differs from the published one.
    """
    if _is_torch_module(model):
        return ModelSource(
            kind="module", spec=spec, module=model, weights_digest=_module_digest(model)
        )
    if not isinstance(model, (str, os.PathLike)):
        raise ModelError(f"Cannot use a {type(model).__name__} as a model; pass {_ACCEPTED}.")
    path = Path(model).expanduser()
    if path.exists():
        return _local(path, spec)
    text = os.fspath(model)
    if isinstance(text, str) and _REPO_ID.match(text) and not text.startswith((".", "/", "~")):
        return _hub(
            text, spec=spec, revision=revision, token=token, cache_dir=cache_dir, verify=verify
        )
    raise ModelNotFoundError(
        f"No model at {text!r}: nothing exists at that path. Pass {_ACCEPTED}."
    )


def _local(path: Path, spec: ModelSpec) -> ModelSource:
    if path.is_dir():
        weights = path / "model.safetensors"
        if not weights.is_file():
            others = sorted(p.name for p in path.iterdir())[:10]
            hint = (
                " It has a pickle checkpoint (pytorch_model.bin), which rmbg does not load: "
                "convert it to safetensors."
                if (path / "pytorch_model.bin").exists()
                else ""
            )
            raise ModelNotFoundError(
                f"{path} is a folder without model.safetensors (it has: {', '.join(others)}).{hint} "
                "A checkpoint folder has the Hub layout: config.json + model.safetensors."
            )
        return ModelSource(
            kind="checkpoint",
            spec=spec,
            path=path,
            weights_path=weights,
            weights_digest=file_sha256(weights),
        )
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return ModelSource(
            kind="checkpoint",
            spec=spec,
            path=path,
            weights_path=path,
            weights_digest=file_sha256(path),
        )
    if suffix == ".onnx":
        return ModelSource(
            kind="onnx", spec=spec, path=path, weights_path=path, weights_digest=file_sha256(path)
        )
    if suffix == ".xml":
        bin_path = path.with_suffix(".bin")
        if not bin_path.is_file():
            raise ModelNotFoundError(
                f"The OpenVINO IR {path} has no weights file {bin_path} beside it."
            )
        digest = hashlib.sha256((file_sha256(path) + file_sha256(bin_path)).encode()).hexdigest()
        return ModelSource(
            kind="ir", spec=spec, path=path, weights_path=bin_path, weights_digest=digest
        )
    if suffix in (".bin", ".pth", ".pt", ".ckpt"):
        raise ModelError(
            f"{path} is a pickle checkpoint; rmbg loads safetensors only (pickle can run code). "
            "Use the repository's model.safetensors."
        )
    raise ModelError(f"Don't know how to load {path}; pass {_ACCEPTED}.")


def _download(repo_id: str, filename: str, **kwargs: Any) -> Path:
    from huggingface_hub import errors as hf
    from huggingface_hub import hf_hub_download

    licence = f"https://huggingface.co/{repo_id}"
    try:
        return Path(hf_hub_download(repo_id, filename, **kwargs))
    except hf.GatedRepoError as exc:
        raise GatedModelError(
            f"The Hub refused {repo_id}: the repository is gated. Accept its licence at {licence} "
            "(RMBG-1.4: non-commercial licence 'bria-rmbg-1.4'; commercial use needs an agreement "
            "with BRIA), then set HF_TOKEN to a token of that account or pass token=."
        ) from exc
    except hf.RepositoryNotFoundError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            raise GatedModelError(
                f"The Hub refused {repo_id} ({status}): check HF_TOKEN / token= and that your "
                f"account accepted the licence at {licence}."
            ) from exc
        raise ModelNotFoundError(f"No repository {repo_id!r} on the Hugging Face Hub.") from exc
    except (hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled) as exc:  # before its base class
        raise ModelNotFoundError(
            f"{repo_id} is not in the Hugging Face cache and cannot be downloaded now (offline, "
            f"HF_HUB_OFFLINE, or no network). While online run `rmbg download` or "
            f"`huggingface-cli download {repo_id}`, or pass a local checkpoint folder "
            "(config.json + model.safetensors) as the model, e.g. via RMBG_MODEL."
        ) from exc
    except hf.EntryNotFoundError as exc:
        raise ModelNotFoundError(f"{repo_id} has no file {filename!r}.") from exc
    except hf.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            raise GatedModelError(
                f"The Hub refused {repo_id} ({status}). Accept the licence at {licence} and set "
                "HF_TOKEN (or pass token=) for an account that did."
            ) from exc
        raise ModelNotFoundError(f"Downloading {filename} of {repo_id} failed: {exc}") from exc


def download(
    repo_id: str = RMBG_1_4.repo_id,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    spec: ModelSpec = RMBG_1_4,
) -> Path:
    """Download (or find in the Hub cache) a checkpoint and return its snapshot folder."""
    source = _hub(
        repo_id, spec=spec, revision=revision, token=token, cache_dir=cache_dir, verify=None
    )
    assert source.path is not None
    return source.path


def _hub(
    repo_id: str,
    *,
    spec: ModelSpec,
    revision: str | None,
    token: str | bool | None,
    cache_dir: str | os.PathLike[str] | None,
    verify: bool | None,
) -> ModelSource:
    kwargs: dict[str, Any] = {"revision": revision, "token": token, "cache_dir": cache_dir}
    weights = _download(repo_id, "model.safetensors", **kwargs)
    try:
        _download(repo_id, "config.json", **kwargs)
    except ModelNotFoundError:
        logger.debug("%s has no config.json; continuing with model.safetensors", repo_id)
    digest = file_sha256(weights)
    official = repo_id.lower() == spec.repo_id.lower()
    check = verify if verify is not None else official
    if check and spec.weights is not None and digest != spec.weights.sha256:
        raise ChecksumMismatchError(
            f"{weights} has sha256 {digest}, not the published {spec.weights.sha256} of "
            f"{spec.repo_id}. The download is corrupt or was altered: delete {weights} (and the "
            "blob it links to) and download it again."
        )
    return ModelSource(
        kind="checkpoint",
        spec=spec,
        path=weights.parent,
        weights_path=weights,
        weights_digest=digest,
        repo_id=repo_id,
        revision=weights.parent.name,
    )
