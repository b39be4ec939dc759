"""rmbg on Ray Data: millions of images on a cluster, the same results as on one machine.

Two pieces, both thin adapters over :class:`~rmbg.BackgroundRemover` and the typed options of
:mod:`rmbg.options` (``pip install 'rmbg[ray]'``; see ``docs/scale.md``):

- :class:`RemoveBackgrounds`, a callable class for :meth:`ray.data.Dataset.map_batches` run on an
  actor pool: each actor loads one remover, and turns a batch of encoded images (the ``bytes``
  column of :func:`ray.data.read_binary_files`) into cutouts or masks, encoded (PNG, WebP) or as
  arrays. A bad image becomes a row with its error instead of failing the job (``strict=True``
  to fail instead)::

      ds = ray.data.read_binary_files("s3://bucket/photos", include_paths=True)
      ds = ds.map_batches(
          RemoveBackgrounds,
          fn_constructor_kwargs={"options": CutoutOptions(background="white")},
          compute=ray.data.ActorPoolStrategy(size=4),
          batch_size=8,
      )

- :func:`remove_backgrounds`, the one call that lists a folder or bucket prefix, skips what is
  already done, processes the rest on the actor pool and writes each result under the name of its
  input (mirrored tree, new extension), atomically, returning the counts and the failures::

      result = remove_backgrounds("s3://bucket/photos", "s3://bucket/cutouts", CutoutOptions())
      print(result.processed, result.skipped, result.failed)

This module is named ``rmbg.ray``; ``import ray`` inside it is an absolute import (PEP 328), so it
reaches the real Ray, never this module.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import posixpath
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
from typing_extensions import Unpack

from rmbg.errors import (
    BackendUnavailableError,
    InvalidImageError,
    RmbgError,
    UnsupportedOptionError,
)
from rmbg.io import encode_image
from rmbg.options import CutoutOptions, MaskOptions

if TYPE_CHECKING:
    from rmbg.remover import RemoverKeywords

try:
    import pyarrow as pa
    import pyarrow.fs as pafs
    import ray
    import ray.data
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise BackendUnavailableError(
        f"rmbg.ray needs Ray Data ({exc}); install it with: pip install 'rmbg[ray]'"
    ) from exc

from rmbg import _ray_files as files
from rmbg._ray_files import (
    ERROR_COLUMN,
    RESULT_COLUMN,
    TEMP_SUFFIX,
    Existing,
    Failure,
    JobResult,
    MirroredImageSink,
    output_name,
)

__all__ = [
    "ERROR_COLUMN",
    "RESULT_COLUMN",
    "TEMP_SUFFIX",
    "Failure",
    "JobResult",
    "MirroredImageSink",
    "RemoveBackgrounds",
    "Sizing",
    "default_sizing",
    "output_name",
    "remove_backgrounds",
]

logger = logging.getLogger("rmbg")

Kind: TypeAlias = Literal["cutout", "mask"]
Encoding: TypeAlias = Literal["png", "webp", "array"]

#: CPUs a read or write task reserves: they wait on storage, and must fit beside the actors,
#: which reserve the rest of a node (:func:`default_sizing`).
IO_CPUS = 0.25

_KINDS: tuple[str, ...] = ("cutout", "mask")
_ENCODINGS: tuple[str, ...] = ("png", "webp", "array")
_EXISTING: tuple[str, ...] = ("skip", "overwrite", "fail")


# -- sizing -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Sizing:
    """How the work is spread over a node's CPUs (the measurements: ``docs/scale.md``).

    Attributes:
        actors_per_node: Actors (model copies) per node.
        cpus_per_actor: CPUs each actor reserves from Ray's scheduler: the node's, less room for
            two read/write tasks of :data:`IO_CPUS` (an actor that reserved them all would starve
            the reads, and the job would never start). The engine itself uses every core: with
            the backend's batch options (OpenVINO: the THROUGHPUT hint, parallel streams).
        batch_size: Images per ``map_batches`` call.
    """

    actors_per_node: int
    cpus_per_actor: float
    batch_size: int


def default_sizing(node_cpus: int) -> Sizing:
    """The defaults for nodes of ``node_cpus`` CPUs: one actor per node running the backend's
    throughput settings over all its cores, batches of 4 images per 2 cores (4 to 16).

    Measured on 2 cores (``benchmarks/ray.py``, ``docs/scale.md``): two actors of one core each
    were no faster than one actor of two streams, and held two model copies.
    """
    cpus = max(1, int(node_cpus))
    return Sizing(
        actors_per_node=1,
        cpus_per_actor=cpus - 2 * IO_CPUS,
        batch_size=max(4, min(16, 4 * (cpus // 2))),
    )


# -- the map_batches callable ------------------------------------------------------------------
class RemoveBackgrounds:
    """A callable class for :meth:`ray.data.Dataset.map_batches`: one remover per actor.

    Pass the class (not an instance) to ``map_batches`` with its arguments in
    ``fn_constructor_kwargs``, and ``compute=ray.data.ActorPoolStrategy(...)``; every argument
    must pickle (the typed options do, a background image included).

    Args:
        kind: ``"cutout"`` or ``"mask"``.
        options: :class:`~rmbg.options.CutoutOptions` / :class:`~rmbg.options.MaskOptions`
            (default: the defaults), validated on the driver when built.
        output: ``"png"`` (bytes, exactly ``remover.cutout(data, output="png")``), ``"webp"``
            (bytes; lossless unless ``quality``) or ``"array"`` (``HxW``/``HxWxC`` uint8).
        quality: WebP quality 1-100 (lossy); ``None`` for lossless.
        model: As for :class:`~rmbg.BackgroundRemover`; a local path must exist on every node.
        column: The input column of encoded images (``read_binary_files``' ``"bytes"``).
        strict: Raise on the first bad image (failing the task, and the job once Ray's retries
            are spent) instead of returning a row with its error.
        workers: Images in flight per actor (default: the engine's infer requests + 2).
        **remover: The rest of :class:`~rmbg.BackgroundRemover`'s keywords (``backend``,
            ``device``, ``precision``, ``backend_options``, ``input_size``, ...:
            :class:`~rmbg.remover.RemoverKeywords`).

    Each output row keeps the input's other columns (e.g. ``path``), drops ``column``, and adds
    :data:`RESULT_COLUMN` (bytes, or an array; ``None`` / an empty array on failure) and
    :data:`ERROR_COLUMN` (``None``, or the error message).
    """

    def __init__(
        self,
        *,
        kind: Kind = "cutout",
        options: CutoutOptions | MaskOptions | None = None,
        output: Encoding = "png",
        quality: int | None = None,
        model: Any = None,
        column: str = "bytes",
        strict: bool = False,
        workers: int | None = None,
        **remover: Unpack[RemoverKeywords],
    ) -> None:
        from rmbg.remover import BackgroundRemover

        self.kind: Kind = _check_choice("kind", kind, _KINDS)  # type: ignore[assignment]
        self.output: Encoding = _check_choice("output", output, _ENCODINGS)  # type: ignore[assignment]
        self.options: MaskOptions = _build_options(self.kind, options)
        _check_quality(quality, self.output)
        self.quality = quality
        self.column = column
        self.strict = bool(strict)
        self.workers = workers
        self.remover = BackgroundRemover(model, **remover)
        self.remover.engine()  # load/compile now: a model that does not load fails the actor

    def __call__(self, batch: Mapping[str, Any]) -> Any:
        """Process one batch (``batch_format="numpy"``): a dict of column arrays."""
        if self.column not in batch:
            raise UnsupportedOptionError(
                f"the batch has no {self.column!r} column (columns: {', '.join(batch)}); "
                "read with ray.data.read_binary_files or pass column="
            )
        images = [bytes(b) for b in batch[self.column]]
        labels = [str(p) for p in batch["path"]] if "path" in batch else None
        results, errors = self._process(images, labels)
        rest = {k: v for k, v in batch.items() if k != self.column}
        if self.output == "array":  # variable-shaped tensors: Ray's numpy batch format
            column = np.empty(len(results), dtype=object)
            column[:] = results
            error_column = np.empty(len(errors), dtype=object)
            error_column[:] = errors
            return {
                **{k: np.asarray(v) for k, v in rest.items()},
                RESULT_COLUMN: column,
                ERROR_COLUMN: error_column,
            }
        # encoded bytes with missing values: an Arrow table keeps them binary (no pickling)
        table = {k: pa.array(list(v)) for k, v in rest.items()}
        table[RESULT_COLUMN] = pa.array(results, type=pa.binary())
        table[ERROR_COLUMN] = pa.array(errors, type=pa.string())
        return pa.table(table)

    def _process(
        self, images: list[bytes], labels: list[str] | None
    ) -> tuple[list[Any], list[str | None]]:
        remover_output = {"png": "png", "webp": "pil", "array": "array"}[self.output]
        run = self.remover.cutouts if self.kind == "cutout" else self.remover.masks
        then = self._encode_webp if self.output == "webp" else None
        results: list[Any] = []
        errors: list[str | None] = []
        outputs = run(
            images,
            self.options,
            output=remover_output,  # type: ignore[arg-type]
            workers=self.workers,
            return_exceptions=True,
            then=then,
        )
        for i, result in enumerate(outputs):
            if isinstance(result, BaseException):
                label = labels[i] if labels else f"image #{i} of the batch"
                if self.strict:  # name the file: the library's message cannot
                    error = (
                        InvalidImageError if isinstance(result, InvalidImageError) else RmbgError
                    )
                    raise error(f"{label}: {_reason(result)} (strict=True)") from result
                results.append(self._empty())
                errors.append(_reason(result))
                logger.warning("%s: %s", label, errors[-1])
            else:
                results.append(result)
                errors.append(None)
        return results, errors

    def _empty(self) -> Any:
        if self.output != "array":
            return None
        channels = () if self.kind == "mask" else (4,)
        return np.zeros((0, 0, *channels), np.uint8)

    def _encode_webp(self, image: Any) -> bytes:
        return encode_image(image, "webp", quality=self.quality)  # the CLI's encoder


def _check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise UnsupportedOptionError(
            f"{name}={value!r} is not one of: {', '.join(map(repr, choices))}."
        )
    return value


def _check_quality(quality: int | None, output: str) -> None:
    if quality is not None and (output != "webp" or not 1 <= int(quality) <= 100):
        raise UnsupportedOptionError("quality= (1-100) applies to WebP only; PNG is lossless.")


def _build_options(kind: str, options: CutoutOptions | MaskOptions | None) -> MaskOptions:
    if kind == "cutout":
        return CutoutOptions.build(options)
    if isinstance(options, CutoutOptions):
        raise UnsupportedOptionError(
            "kind='mask' takes MaskOptions; CutoutOptions describe a cutout (background, trim)."
        )
    return MaskOptions.build(options)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (RmbgError, OSError, ValueError)) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# -- the one call ---------------------------------------------------------------------------------
def remove_backgrounds(
    input_uri: str | os.PathLike[str],
    output_uri: str | os.PathLike[str],
    options: CutoutOptions | MaskOptions | None = None,
    *,
    kind: Kind = "cutout",
    format: Literal["png", "webp"] = "png",
    quality: int | None = None,
    model: Any = None,
    recursive: bool = True,
    existing: Existing = "skip",
    strict: bool = False,
    actors: int | None = None,
    cpus_per_actor: float | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    input_filesystem: pafs.FileSystem | None = None,
    output_filesystem: pafs.FileSystem | None = None,
    ray_remote_args: Mapping[str, Any] | None = None,
    **remover: Unpack[RemoverKeywords],
) -> JobResult:
    """Cut out (or mask) every image under ``input_uri`` into ``output_uri`` on Ray Data.

    Outputs mirror the inputs: ``<input_uri>/a/b.jpg`` -> ``<output_uri>/a/b.png``. Uses the
    running Ray cluster (``ray.init(address=...)`` first), or starts a local one.

    Args:
        input_uri: A folder (or one file): a local path, ``file://``, ``s3://bucket/prefix``,
            ``gs://bucket/prefix``, or any URI :mod:`pyarrow.fs` understands. Hidden files and
            files that are not images (by extension) are ignored.
        output_uri: The output folder or prefix (created as needed).
        options: :class:`~rmbg.options.CutoutOptions` / :class:`~rmbg.options.MaskOptions`.
        kind: ``"cutout"`` or ``"mask"``.
        format: ``"png"`` (bytes identical to ``remover.cutout(data, output="png")``) or
            ``"webp"`` (lossless unless ``quality``).
        quality: WebP quality 1-100.
        model: As for :class:`~rmbg.BackgroundRemover`, for the remover each actor loads (a
            local path must exist on every node).
        recursive: Descend into sub-folders.
        existing: What to do with an output that exists: ``"skip"`` (resume, the default),
            ``"overwrite"``, or ``"fail"`` (a failure row, like the CLI without
            ``--overwrite``/``--skip-existing``).
        strict: Fail the job on the first bad image instead of reporting it.
        actors: Actors (model copies) in the pool (default: one per node's worth of CPUs, see
            :func:`default_sizing`).
        cpus_per_actor: CPUs each actor reserves (default: a node's CPUs less 0.5, the room
            two read/write tasks need).
        batch_size: Images per batch (default from :func:`default_sizing`).
        progress: Ray Data's progress bars (on stderr).
        input_filesystem, output_filesystem: :class:`pyarrow.fs.FileSystem` objects to use
            instead of the ones the URIs name (credentials, endpoints, ...).
        ray_remote_args: More arguments for the actors' ``map_batches``, e.g. ``resources``,
            ``runtime_env`` or ``label_selector``. A dead actor (a crashed or OOM-killed worker,
            a lost node) is restarted and its batch retried: Ray Data's defaults for actor
            pools (``max_restarts=-1``, ``max_task_retries=-1``), which rmbg keeps.
        **remover: The rest of :class:`~rmbg.BackgroundRemover`'s keywords for the actors'
            removers (``backend``, ``device``, ``precision``, ``input_size``, ...:
            :class:`~rmbg.remover.RemoverKeywords`). A mapping of ``backend_options`` goes over
            the backend's batch options (OpenVINO: the THROUGHPUT hint), as in the CLI's folder
            mode.

    Returns:
        A :class:`JobResult`: outputs written, skipped, and one failure per input without output.

    Raises:
        UnsupportedOptionError: A bad option (before anything runs).
        FileNotFoundError: ``input_uri`` does not exist.
        RmbgError: ``strict`` and a bad image, or the model failed to load on the actors.
    """
    started = time.perf_counter()
    kind = _check_choice("kind", kind, _KINDS)  # type: ignore[assignment]
    fmt = _check_choice("format", format, ("png", "webp"))
    _check_choice("existing", existing, _EXISTING)
    opts = _build_options(kind, options)
    _check_quality(quality, fmt)
    remover["backend_options"] = _batch_options(
        remover.get("backend", "openvino"), remover.get("backend_options")
    )
    in_fs, in_root = files.resolve(os.fspath(input_uri), input_filesystem)
    out_fs, out_root = files.resolve(os.fspath(output_uri), output_filesystem)
    info = in_fs.get_file_info(in_root)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"{input_uri}: no such file or folder")
    plan = files.plan(
        in_fs,
        in_root,
        info.type == pafs.FileType.File,
        out_fs,
        out_root,
        fmt=fmt,
        recursive=recursive,
        existing=existing,
    )
    result = JobResult(skipped=plan.skipped, failed=list(plan.failed))
    if plan.todo:
        sizing = default_sizing(_node_cpus())
        per_actor = float(cpus_per_actor) if cpus_per_actor is not None else sizing.cpus_per_actor
        pool = actors if actors is not None else _pool_size(per_actor)
        if pool < 1:
            raise UnsupportedOptionError(f"actors must be at least 1, not {pool}")
        sink = files.MirroredImageSink(
            in_root if info.type != pafs.FileType.File else posixpath.dirname(in_root),
            out_root,
            fmt=fmt,
            filesystem=out_fs,
        )
        ctx = ray.data.DataContext.get_current()
        shown, ctx.enable_progress_bars = ctx.enable_progress_bars, progress
        ds = ray.data.read_binary_files(
            plan.todo, include_paths=True, filesystem=in_fs, num_cpus=IO_CPUS
        )
        ds = ds.map_batches(
            RemoveBackgrounds,
            fn_constructor_kwargs={
                "kind": kind,
                "options": opts,
                "output": fmt,
                "quality": quality,
                "model": model,
                "strict": strict,
                **remover,
            },
            batch_size=batch_size or sizing.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=pool),
            num_cpus=per_actor,
            **dict(ray_remote_args or {}),
        )
        try:
            ds.write_datasink(sink, ray_remote_args={"num_cpus": IO_CPUS})
        finally:
            ctx.enable_progress_bars = shown
        if sink.outcome is not None:
            result.processed = sink.outcome.processed
            result.failed.extend(sink.outcome.failed)
    result.failed.sort(key=lambda f: f.input)
    result.seconds = time.perf_counter() - started
    return result


def _batch_options(backend: str, options: Any) -> Any:
    """The backend's throughput options under the user's (as the CLI's folder mode does),
    validated here, on the driver, before any actor starts."""
    from rmbg.backends import get_backend

    backend_cls = get_backend(backend)
    if options is None or isinstance(options, Mapping):
        options = {**backend_cls.batch_options, **(options or {})}
    backend_cls.Options.parse(options, backend_cls.name)
    return options


def _node_cpus() -> int:
    """The CPUs of the largest alive node of the cluster (Ray started if it is not)."""
    if not ray.is_initialized():
        ray.init()
    cpus = [n["Resources"].get("CPU", 0) for n in _nodes() if n.get("Alive")]
    return int(max(cpus, default=1)) or 1


def _pool_size(cpus_per_actor: float) -> int:
    """Actors that fit on the alive nodes at ``cpus_per_actor`` each, beside two read/write
    tasks per node (at least one)."""
    fit = 0
    for node in _nodes():
        if node.get("Alive"):
            free = float(node["Resources"].get("CPU", 0)) - 2 * IO_CPUS
            fit += int(free // max(cpus_per_actor, 1e-6))
    return max(1, fit)


def _nodes() -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return nodes
