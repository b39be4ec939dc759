"""Find, download and verify model weights. Never imports torch; imports huggingface_hub lazily.

:func:`resolve_model` turns what the user passed as ``model`` into a :class:`ModelSource`:

- a local checkpoint folder (``config.json`` + ``model.safetensors``, the Hub layout) or the
  ``.safetensors`` file itself;
- an ``.onnx`` export, or an OpenVINO ``.xml`` IR with its ``.bin`` beside it;
- a torch module (anything that is a ``torch.nn.Module``), digested from its state dict;
- a Hugging Face Hub repo id (``owner/name``), downloaded through ``huggingface_hub``, which
  honours ``HF_HOME``, ``HF_HUB_OFFLINE`` and ``HF_TOKEN`` itself. Only ``model.safetensors`` (and
  ``config.json``) is fetched, never the pickle ``pytorch_model.bin``; for the official repository
  its sha256 is checked against the published digest.

A string that exists on disk is a path; a string of the form ``owner/name`` that does not is a repo
id; anything else is an error that lists the accepted forms.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import sys
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from .cache import default_cache_dir, sha256_file
from .errors import (
    ChecksumMismatchError,
    GatedModelError,
    ModelError,
    ModelNotFoundError,
    UnsupportedOptionError,
)
from .source import ModelSource
from .specs import RMBG_1_4, ModelSpec

__all__ = [
    "check_tensors",
    "default_cache_dir",
    "default_model",
    "download",
    "file_sha256",
    "hub_reachable",
    "read_state_dict",
    "resolve_model",
]

logger = logging.getLogger("rmbg")

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_FILE_SUFFIXES = (".safetensors", ".onnx", ".xml", *_PICKLE_SUFFIXES)
# huggingface_hub's rule for repo ids: letters, digits, "-", "_", "." (no "--" or "..", checked by it)
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]*[A-Za-z0-9_]$")
_ACCEPTED = (
    "a Hugging Face repo id such as 'briaai/RMBG-1.4', a checkpoint folder (config.json + "
    "model.safetensors), a .safetensors file, an .onnx file, an OpenVINO .xml IR (with its .bin), "
    "or a torch module"
)
_OFFLINE_ADVICE = (
    "While online, run `rmbg download --model {repo}` or `hf download {repo}` (the "
    "copy lands in the Hugging Face cache, HF_HOME), or pass a local checkpoint folder "
    "(config.json + model.safetensors) as the model (or via RMBG_MODEL)."
)
_GATED_ADVICE = (
    "Accept the licence at https://huggingface.co/{repo} while logged in (RMBG-1.4 is gated under "
    "BRIA's non-commercial licence 'bria-rmbg-1.4'; commercial use needs an agreement with "
    "BRIA), then set HF_TOKEN to a token of that account (or pass token=, or run "
    "`hf auth login`)."
)

# sha256 memo: (resolved path, size, mtime_ns) -> hex digest, for this process
_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()
_SIDECAR = "digests.json"
_SIDECAR_MIN_BYTES = 16 << 20  # smaller files hash faster than the sidecar round trip
_SIDECAR_ENTRIES = 256


def default_model(spec: ModelSpec = RMBG_1_4) -> str:
    """The model used when none is named: ``$RMBG_MODEL`` if set, else the spec's Hub repo."""
    return os.environ.get("RMBG_MODEL") or spec.repo_id


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file, hashed at most once per process.

    Digests are memoised by (resolved path, size, mtime_ns). For large files a small JSON sidecar
    (``digests.json`` in :func:`default_cache_dir`) also remembers them across processes, so a new
    process does not re-read a 176 MB checkpoint to key its cache. A missing, unreadable or
    corrupt sidecar only costs a re-hash.

    Args:
        path: The file (symlinks are followed, as in the Hugging Face cache).

    Returns:
        The lowercase hex digest.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    with _digests_lock:
        digest = _digests.get(key)
    if digest is not None:
        return digest
    use_sidecar = st.st_size >= _SIDECAR_MIN_BYTES
    sidecar = default_cache_dir() / _SIDECAR
    skey = f"{key[0]}|{key[1]}|{key[2]}"
    if use_sidecar:
        known = _read_sidecar(sidecar).get(skey)
        if isinstance(known, str) and re.fullmatch(r"[0-9a-f]{64}", known):
            digest = known
    if digest is None:
        logger.debug("hashing %s (%d bytes)", p, st.st_size)
        digest = sha256_file(p)
        if use_sidecar:
            known_all = _read_sidecar(sidecar)
            known_all.pop(skey, None)
            known_all[skey] = digest  # most recent last: trimming keeps the newest
            _write_sidecar(sidecar, known_all)
    with _digests_lock:
        _digests[key] = digest
    return digest


def _read_sidecar(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent, unreadable, or not JSON
        return {}
    return data if isinstance(data, dict) else {}


def _write_sidecar(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(dict(list(data.items())[-_SIDECAR_ENTRIES:])), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache only costs re-hashing
        logger.debug("digest sidecar %s not written: %s", path, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, NDArray[Any]]:
    """The tensors of a ``.safetensors`` file as numpy arrays (no torch, no pickle).

    Args:
        path: A ``.safetensors`` file.

    Every tensor must be floating point and finite, except the int64 ``*.num_batches_tracked``
    counters (one summing pass over the weights, under 0.2 s for RMBG-1.4): bad weights are reported
    here, naming the tensor, rather than blamed on an image at inference.

    Raises:
        ModelNotFoundError: The file does not exist.
        ModelError: The file is not a readable safetensors file (truncated, corrupt, other format),
            or a tensor has another dtype or NaN/infinite values.
    """
    from safetensors.numpy import load_file

    p = Path(path)
    if not p.is_file():
        raise ModelNotFoundError(
            f"No weights file at {p}. Pass an existing model.safetensors or checkpoint folder."
        )
    try:
        tensors = dict(load_file(str(p)))
    except Exception as exc:  # safetensors raises SafetensorError, OSError, ValueError...
        raise ModelError(
            f"{p} is not a readable safetensors file ({type(exc).__name__}: {exc}). It is probably "
            "truncated or corrupt: delete it and download it again."
        ) from exc
    check_tensors(tensors, str(p))
    return tensors


_COUNTER_SUFFIX = ".num_batches_tracked"


def check_tensors(tensors: Mapping[str, NDArray[Any]], where: str) -> None:
    """Raise :class:`ModelError` naming the first tensor that is not floating point (the int64
    batch counters excepted) or holds NaN or infinite values.

    Args:
        tensors: Name -> numpy array, as :func:`read_state_dict` reads them.
        where: The file, for the message.
    """
    for name, arr in tensors.items():
        if name.endswith(_COUNTER_SUFFIX) and arr.dtype == np.int64:
            continue
        if arr.dtype.kind != "f":
            expected = "int64" if name.endswith(_COUNTER_SUFFIX) else "floating point"
            raise ModelError(
                f"{where}: tensor {name!r} has dtype {arr.dtype}, not {expected}. RMBG weights "
                "are floating point (only the *.num_batches_tracked counters are int64), so this "
                "is not a checkpoint rmbg can run: save the weights as float32 (or float16)."
            )
        # one float64 sum finds any NaN or infinity without a temporary array of the tensor's size
        with np.errstate(invalid="ignore", over="ignore"):
            finite = not arr.size or bool(np.isfinite(arr.sum(dtype=np.float64)))
        if not finite:
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise ModelError(
                f"{where}: tensor {name!r} has {bad:,} NaN or infinite value(s) out of "
                f"{arr.size:,}. The checkpoint is corrupt (or its training diverged): use another "
                "one, or download it again."
            )


def _is_torch_module(obj: Any) -> bool:
    """Whether ``obj`` is a ``torch.nn.Module``, without importing torch (no torch, no module)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _module_digest(module: Any) -> str:
    """sha256 over the class and the sorted state dict: key names, dtypes, shapes and bytes.

    The class is part of it because a converter traces ``forward``: same weights under another
    class (other code) must not reuse a converted model.
    """
    torch = sys.modules["torch"]
    h = hashlib.sha256()
    cls = type(module)
    h.update(f"class|{cls.__module__}.{cls.__qualname__}\n".encode())
    with torch.no_grad():
        for name, tensor in sorted(module.state_dict().items()):
            t = tensor.detach()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
            if t.numel():
                # reinterpret as bytes on the CPU: works for every dtype (bf16 has no numpy twin)
                raw = t.to("cpu").contiguous().reshape(-1).view(torch.uint8)
                h.update(memoryview(raw.numpy()))
    return h.hexdigest()


def resolve_model(
    model: str | os.PathLike[str] | Any = RMBG_1_4.repo_id,
    *,
    spec: ModelSpec = RMBG_1_4,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    verify: bool | None = None,
) -> ModelSource:
    """Resolve ``model`` into a :class:`~rmbg.backends.base.ModelSource`, downloading if needed.

    Args:
        model: A Hub repo id (``"briaai/RMBG-1.4"``), a checkpoint folder (config.json +
            model.safetensors), a ``.safetensors`` file, an ``.onnx`` file, an OpenVINO ``.xml``
            IR (its ``.bin`` beside it), or a torch module. A string that exists on disk is a path.
        spec: The model facts; its ``repo_id`` and published digests identify the official files.
        revision: Hub revision (branch, tag or commit hash); Hub only.
        token: Hub token; ``None`` uses ``HF_TOKEN`` or the stored login, ``False`` sends none.
        cache_dir: Hugging Face cache folder (default: huggingface_hub's, under ``HF_HOME``).
        verify: Check the sha256 against the published digest of ``spec``. ``None`` checks when
            ``model`` is the official repository; ``True`` also checks a repo mirror or a local
            ``model.safetensors``/``.onnx`` file; ``False`` never checks.

    Returns:
        The resolved source; ``weights_digest`` is the sha256 of the weights (for a checkpoint,
        of model.safetensors; for an IR, of the .xml and .bin; for a module, of its state dict).

    Raises:
        ModelNotFoundError: No such path, no such repository or file, or offline with no cached
            copy.
        GatedModelError: The Hub refused the download (licence not accepted, missing/bad token).
        ChecksumMismatchError: The file differs from the published one.
        ModelError: ``model`` is neither a path, a repo id nor a torch module, or a file rmbg
            does not load (pickle).
        UnsupportedOptionError: ``verify=True`` for a model with no published digest (IR, module).
    """
    if isinstance(model, ModelSource):
        return model
    if _is_torch_module(model):
        if verify:
            raise UnsupportedOptionError(
                "verify=True cannot check a torch module (only files BRIA publishes have digests); "
                "pass verify=None, or pass the model.safetensors file instead."
            )
        source = ModelSource(
            kind="module", spec=spec, module=model, weights_digest=_module_digest(model)
        )
        logger.debug("using the %s module handed in", type(model).__name__)
        return source
    if not isinstance(model, (str, os.PathLike)):
        raise ModelError(f"Cannot use a {type(model).__name__} as a model; pass {_ACCEPTED}.")
    text = os.fspath(model)
    if not isinstance(text, str):  # a bytes path
        raise ModelError(f"Pass the model path as str or pathlib.Path, not {type(text).__name__}.")
    if not text.strip():
        raise ModelNotFoundError(f"The model is an empty string; pass {_ACCEPTED}.")
    path = Path(text).expanduser()
    if path.exists():
        return _local(path, spec=spec, verify=verify)
    if isinstance(model, str) and _looks_like_repo_id(text):
        return _hub(
            text, spec=spec, revision=revision, token=token, cache_dir=cache_dir, verify=verify
        )
    raise ModelNotFoundError(
        f"No model at {text!r}: nothing exists at that path (resolved: {path.absolute()}), and it "
        f"is not a Hub repo id of the form 'owner/name'. Pass {_ACCEPTED}."
    )


def _looks_like_repo_id(text: str) -> bool:
    return (
        bool(_REPO_ID.match(text))
        and "--" not in text
        and ".." not in text
        and not text.lower().endswith(_FILE_SUFFIXES)
    )


def _check_local(path: Path, digest: str, published: tuple[str, ...], verify: bool | None) -> None:
    if not verify:
        return
    if not published:
        raise UnsupportedOptionError(
            f"verify=True cannot check {path}: the model spec publishes no digest for such a file. "
            "Pass verify=None."
        )
    if digest not in published:
        raise ChecksumMismatchError(
            f"{path} has sha256 {digest}, which is not a published digest of the official files "
            f"({', '.join(published)}). It is not the official file, or it is corrupt: download it "
            "again, or pass verify=None to use it anyway."
        )


def _local(path: Path, *, spec: ModelSpec, verify: bool | None) -> ModelSource:
    safetensors_digests = (spec.weights.sha256,) if spec.weights is not None else ()
    if path.is_dir():
        weights = path / WEIGHTS_NAME
        if not weights.is_file():
            raise ModelNotFoundError(_folder_without_weights(path))
        digest = file_sha256(weights)
        _check_local(weights, digest, safetensors_digests, verify)
        logger.debug("using the checkpoint folder %s", path)
        return ModelSource(
            kind="checkpoint", spec=spec, path=path, weights_path=weights, weights_digest=digest
        )
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        digest = file_sha256(path)
        _check_local(path, digest, safetensors_digests, verify)
        return ModelSource(
            kind="checkpoint", spec=spec, path=path, weights_path=path, weights_digest=digest
        )
    if suffix == ".onnx":
        digest = file_sha256(path)
        _check_local(path, digest, tuple(w.sha256 for w in spec.onnx_weights), verify)
        return ModelSource(
            kind="onnx", spec=spec, path=path, weights_path=path, weights_digest=digest
        )
    if suffix == ".bin" and path.with_suffix(".xml").is_file():
        path = path.with_suffix(".xml")  # the weights half of an IR was passed: use the pair
        suffix = ".xml"
    if suffix == ".xml":
        bin_path = path.with_suffix(".bin")
        if not bin_path.is_file():
            raise ModelNotFoundError(
                f"The OpenVINO IR {path} has no weights file {bin_path.name} beside it. Copy the "
                ".xml and .bin together (same folder, same stem)."
            )
        _check_local(path, "", (), verify)
        digest = hashlib.sha256(
            f"xml:{file_sha256(path)}\nbin:{file_sha256(bin_path)}\n".encode()
        ).hexdigest()
        return ModelSource(
            kind="ir", spec=spec, path=path, weights_path=bin_path, weights_digest=digest
        )
    if suffix in _PICKLE_SUFFIXES:
        raise ModelError(
            f"{path} looks like a pickle checkpoint; rmbg loads safetensors only (unpickling can "
            "run arbitrary code). Use the repository's model.safetensors, or convert the file "
            "with safetensors.torch.save_file(torch.load(path, weights_only=True), "
            "'model.safetensors') if you trust it."
        )
    raise ModelError(f"Don't know how to load {path} (suffix {suffix!r}); pass {_ACCEPTED}.")


def _folder_without_weights(path: Path) -> str:
    try:
        names = sorted(p.name for p in path.iterdir())
    except OSError:
        names = []
    listing = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "") if names else "nothing"
    hint = ""
    if "pytorch_model.bin" in names:
        hint = (
            " It has a pickle checkpoint (pytorch_model.bin), which rmbg never loads: use the "
            "repository's model.safetensors instead."
        )
    else:
        models = sorted(
            p.relative_to(path).as_posix()
            for pattern in ("*.onnx", "*.xml", "onnx/*.onnx")
            for p in path.glob(pattern)
        )
        if models:
            hint = f" To use an ONNX file or IR, pass the file itself (e.g. {path / models[0]})."
    return (
        f"{path} is a folder without {WEIGHTS_NAME} (it has: {listing}).{hint} A checkpoint "
        f"folder has the Hub layout: {CONFIG_NAME} + {WEIGHTS_NAME}."
    )


#: Seconds to wait for a TCP connection to the Hub before calling it unreachable.
HUB_PROBE_TIMEOUT_S = 3.0


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub's endpoint (``HF_ENDPOINT``) opens within ``timeout``.

    ``False`` at once under ``HF_HUB_OFFLINE``; ``True`` without trying when a proxy is configured
    (the proxy decides). Without this check huggingface_hub spends about 25 s retrying, with
    warnings, before it falls back to the cache on a machine without network.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urllib.parse.urlsplit(constants.ENDPOINT)
    if not url.hostname:
        return True
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError as exc:
        logger.debug("Hub probe %s:%s failed: %s", url.hostname, port, exc)
        return False
    return True


def _status(exc: BaseException) -> int | None:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _download(repo_id: str, filename: str, *, official: bool, **kwargs: Any) -> Path:
    """``hf_hub_download`` with its errors turned into rmbg's, each saying what to do."""
    from huggingface_hub import errors as hf
    from huggingface_hub import hf_hub_download

    gated = _GATED_ADVICE.format(repo=repo_id)
    # a non-official id may be a mistyped relative path: say so where it helps
    path_note = (
        "" if official else f" (If {repo_id!r} was meant as a local path: nothing exists there.)"
    )
    try:
        return Path(cast(str, hf_hub_download(repo_id, filename, **kwargs)))
    except hf.GatedRepoError as exc:  # before RepositoryNotFoundError, its base class
        raise GatedModelError(
            f"The Hugging Face Hub refused to serve {repo_id}: the repository is gated and this "
            f"account has no access (status {_status(exc)}). {gated}"
        ) from exc
    except hf.RepositoryNotFoundError as exc:
        # The Hub answers 401 for a private or gated repo when the token is missing or wrong,
        # as for a repo that does not exist; the official repo does exist, so it is access.
        if official:
            raise GatedModelError(
                f"The Hugging Face Hub refused to serve {repo_id} (status {_status(exc)}): the "
                f"token is missing or invalid. {gated}"
            ) from exc
        raise ModelNotFoundError(
            f"No repository {repo_id!r} on the Hugging Face Hub, or it is private/gated and the "
            "token (HF_TOKEN or token=) cannot see it. Check the spelling; for a gated repository "
            "accept its terms and set HF_TOKEN." + path_note
        ) from exc
    except hf.RevisionNotFoundError as exc:
        raise ModelNotFoundError(
            f"{repo_id} has no revision {kwargs.get('revision')!r}. Pass an existing branch, tag "
            "or commit hash as revision=, or leave it unset for 'main'."
        ) from exc
    except (hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled) as exc:
        # before EntryNotFoundError: LocalEntryNotFoundError is one of its subclasses
        raise ModelNotFoundError(
            f"{filename} of {repo_id} is not in the Hugging Face cache and cannot be downloaded "
            "now (HF_HUB_OFFLINE is set, or the Hub is unreachable). "
            + _OFFLINE_ADVICE.format(repo=repo_id)
            + path_note
        ) from exc
    except hf.EntryNotFoundError as exc:
        raise ModelNotFoundError(
            f"{repo_id} has no file {filename!r}. rmbg needs an RMBG-1.4-style repository with "
            f"{WEIGHTS_NAME} (it never loads pickle files)."
        ) from exc
    except hf.HfHubHTTPError as exc:
        status = _status(exc)
        if status in (401, 403):
            raise GatedModelError(
                f"The Hugging Face Hub refused to serve {repo_id} (status {status}): the token "
                f"is missing, invalid or lacks access to this repository. {gated}"
            ) from exc
        raise ModelNotFoundError(
            f"Downloading {filename} of {repo_id} failed (status {status}): {exc}. Retry later; "
            + _OFFLINE_ADVICE.format(repo=repo_id)
        ) from exc
    except hf.HFValidationError as exc:
        raise ModelNotFoundError(
            f"{repo_id!r} is not a valid Hub repo id ({exc}), and no such local path exists. "
            f"Pass {_ACCEPTED}."
        ) from exc


def _hub(
    repo_id: str,
    *,
    spec: ModelSpec,
    revision: str | None,
    token: str | bool | None,
    cache_dir: str | os.PathLike[str] | None,
    verify: bool | None,
) -> ModelSource:
    official = repo_id.lower() == spec.repo_id.lower()
    kwargs: dict[str, Any] = {
        "revision": revision,
        "token": token,
        "cache_dir": os.fspath(cache_dir) if cache_dir is not None else None,
    }
    if not hub_reachable():
        logger.warning(
            "The Hugging Face Hub is unreachable: looking for %s in the local cache only.", repo_id
        )
        kwargs["local_files_only"] = True
    weights = _download(repo_id, WEIGHTS_NAME, official=official, **kwargs)
    try:
        _download(repo_id, CONFIG_NAME, official=official, **kwargs)
    except ModelNotFoundError as exc:  # not needed to run the network
        logger.debug("%s: no %s (%s); continuing with %s", repo_id, CONFIG_NAME, exc, WEIGHTS_NAME)
    digest = file_sha256(weights)
    check = official if verify is None else verify
    if check and spec.weights is not None and digest != spec.weights.sha256:
        blob = weights.resolve()
        also = f" and the blob it points to, {blob}," if blob != weights else ""
        raise ChecksumMismatchError(
            f"{weights} has sha256 {digest}, not the published {spec.weights.sha256} of "
            f"{spec.repo_id}/{spec.weights.filename}. The download is corrupt, incomplete or was "
            f"altered: delete {weights}{also} then download it again (`rmbg download` or "
            f"`hf download {repo_id} {WEIGHTS_NAME} --force-download`)."
        )
    logger.debug("using %s from the Hugging Face cache (%s)", repo_id, weights.parent)
    return ModelSource(
        kind="checkpoint",
        spec=spec,
        path=weights.parent,
        weights_path=weights,
        weights_digest=digest,
        repo_id=repo_id,
        revision=weights.parent.name,  # the snapshot folder is named by the commit hash
    )


def download(
    repo_id: str = RMBG_1_4.repo_id,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    spec: ModelSpec = RMBG_1_4,
) -> Path:
    """Download a checkpoint into the Hugging Face cache (or find it there), verified.

    Fetches ``model.safetensors`` and ``config.json`` only (never the pickle) and checks the
    official repository's digest. Used by ``rmbg download``.

    Args:
        repo_id: The Hub repository.
        revision: Branch, tag or commit hash (default: ``main``).
        token: Hub token; ``None`` uses ``HF_TOKEN`` or the stored login.
        cache_dir: Hugging Face cache folder (default: huggingface_hub's, under ``HF_HOME``).
        spec: The model facts (official repository and digest).

    Returns:
        The snapshot folder (config.json + model.safetensors), usable as a local model path.

    Raises:
        ModelNotFoundError: No such repository/file, or offline with no cached copy.
        GatedModelError: The Hub refused the download.
        ChecksumMismatchError: The official file's digest does not match.
    """
    source = _hub(
        repo_id, spec=spec, revision=revision, token=token, cache_dir=cache_dir, verify=None
    )
    if source.path is None:  # pragma: no cover - _hub always sets it
        raise ModelNotFoundError(f"No snapshot folder for {repo_id}.")
    return source.path
