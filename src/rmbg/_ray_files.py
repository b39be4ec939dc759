"""Files for :mod:`rmbg.ray`: listing inputs, mirrored output names, resuming, atomic writes.

Kept apart from :mod:`rmbg.ray` (the Ray-facing adapter) so that each stays small; everything here
works on :mod:`pyarrow.fs` file systems (local, ``s3://``, ``gs://``, ...).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import posixpath
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import pyarrow.fs as pafs
from ray.data import Datasink
from ray.data.block import Block, BlockAccessor

from .photos import image_suffixes, is_own_output

if TYPE_CHECKING:
    from ray.data._internal.execution.interfaces import TaskContext

__all__ = [
    "ERROR_COLUMN",
    "RESULT_COLUMN",
    "TEMP_SUFFIX",
    "Existing",
    "Failure",
    "JobResult",
    "MirroredImageSink",
    "Plan",
    "hidden",
    "output_name",
    "plan",
    "relative",
    "resolve",
    "write_atomic",
]

logger = logging.getLogger("rmbg")

Existing: TypeAlias = Literal["skip", "overwrite", "fail"]

#: The column :class:`~rmbg.ray.RemoveBackgrounds` writes its results to (bytes or an array).
RESULT_COLUMN = "result"
#: The column holding a failed image's error message (``None`` when it succeeded).
ERROR_COLUMN = "error"
#: Suffix of the temporary files outputs are written to before being renamed into place.
TEMP_SUFFIX = ".rmbg-tmp"


# -- names, listing, writing ---------------------------------------------------------------------
def output_name(relative: str, fmt: str) -> str:
    """The output's path relative to the output root: the input's, with ``fmt`` as extension
    (``shop/a/photo.jpg`` -> ``shop/a/photo.png``), as the CLI's ``--out-dir`` names them."""
    head, tail = posixpath.split(relative)
    stem = tail.rsplit(".", 1)[0] if "." in tail.lstrip(".") else tail
    return posixpath.join(head, f"{stem}.{fmt}") if head else f"{stem}.{fmt}"


def resolve(uri: str, filesystem: pafs.FileSystem | None) -> tuple[pafs.FileSystem, str]:
    """``uri`` -> (file system, path on it): local paths, ``file://``, ``s3://``, ``gs://``..."""
    if filesystem is not None:
        path = uri.split("://", 1)[1] if "://" in uri else uri
        if isinstance(filesystem, pafs.LocalFileSystem):
            path = os.path.abspath(path)
        return filesystem, path.rstrip("/") or "/"
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path.rstrip("/")


def relative(path: str, root: str) -> str:
    return posixpath.relpath(path, root) if root not in ("", "/") else path.lstrip("/")


def hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


@dataclasses.dataclass(frozen=True)
class Failure:
    """An input that produced no output, and why."""

    input: str
    error: str


@dataclasses.dataclass
class JobResult:
    """What :func:`remove_backgrounds` did.

    Attributes:
        processed: Outputs written by this run.
        skipped: Inputs whose output already existed (``existing="skip"``).
        failed: One :class:`Failure` per input without an output (unreadable image, output in
            the way, ...), sorted by input.
        seconds: Wall time of the run (listing, processing and writing).
    """

    processed: int = 0
    skipped: int = 0
    failed: list[Failure] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every input has its output."""
        return not self.failed


class MirroredImageSink(Datasink[dict[str, Any]]):
    """A :class:`ray.data.Datasink` that writes each row's encoded result under the name of its
    input: ``<output root>/<input path relative to the input root, new extension>``.

    Every file is written to a hidden temporary name in its destination folder and renamed into
    place (locally: fsync then ``os.replace``, atomic; on object stores: ``move``, a server-side
    copy that makes the object appear complete, then the temporary is deleted), so a reader, or
    a rerun after a crash, never sees a partial output. A retried write (a task re-run after an
    actor died) writes the same bytes to the same name: nothing is doubled.

    Ray's own file datasinks name files after the write task (``FilenameProvider``'s per-row
    names are deprecated since Ray 2.5x), which cannot mirror the inputs: hence this sink.
    Rows with an :data:`ERROR_COLUMN` are not written; they come back as failures.
    """

    def __init__(
        self,
        input_root: str,
        output_root: str,
        *,
        fmt: str,
        filesystem: pafs.FileSystem,
    ) -> None:
        self.input_root = input_root
        self.output_root = output_root
        self.fmt = fmt
        self.filesystem = filesystem
        self.outcome: JobResult | None = None

    def get_name(self) -> str:
        return "rmbg-mirrored-images"

    def destination(self, input_path: str) -> str:
        """The output path (on the output file system) of ``input_path``."""
        rel = output_name(relative(input_path, self.input_root), self.fmt)
        return posixpath.join(self.output_root, rel)

    def write(self, blocks: Iterable[Block], ctx: TaskContext) -> dict[str, Any]:
        written = 0
        failures: list[tuple[str, str]] = []
        for block in blocks:
            table = BlockAccessor.for_block(block).to_arrow()
            paths = table.column("path").to_pylist()
            results = table.column(RESULT_COLUMN).to_pylist()
            errors = table.column(ERROR_COLUMN).to_pylist()
            for path, data, error in zip(paths, results, errors, strict=True):
                if error is not None or data is None:
                    failures.append((path, error or "no result"))
                    continue
                try:
                    write_atomic(self.filesystem, self.destination(path), data)
                except OSError as exc:
                    failures.append((path, f"cannot write {self.destination(path)}: {exc}"))
                else:
                    written += 1
        return {"written": written, "failed": failures}

    def on_write_complete(self, write_result: Any) -> None:
        returns = list(getattr(write_result, "write_returns", write_result) or [])
        outcome = JobResult()
        for r in returns:
            outcome.processed += int(r["written"])
            outcome.failed.extend(Failure(p, e) for p, e in r["failed"])
        self.outcome = outcome


def write_atomic(fs: pafs.FileSystem, dest: str, data: bytes) -> None:
    folder, name = posixpath.split(dest)
    tmp = posixpath.join(folder, f".{name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")
    if isinstance(fs, pafs.LocalFileSystem):
        os.makedirs(folder, exist_ok=True)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    with fs.open_output_stream(tmp) as f:
        f.write(data)
    try:
        fs.move(tmp, dest)
    finally:
        if fs.get_file_info(tmp).type != pafs.FileType.NotFound:
            fs.delete_file(tmp)


@dataclasses.dataclass
class Plan:
    todo: list[str]  # input paths on the input file system
    skipped: int
    failed: list[Failure]


def plan(
    in_fs: pafs.FileSystem,
    in_root: str,
    single: bool,
    out_fs: pafs.FileSystem,
    out_root: str,
    *,
    fmt: str,
    recursive: bool,
    existing: Existing,
) -> Plan:
    """The inputs that need work, decided before any is read (as the CLI's folder mode does).

    One listing of the input tree and one of the output tree (not one request per file), so a
    rerun over a million done outputs costs two listings. Leftover temporary files of a crashed
    run are removed from the output tree.
    """
    if single:
        inputs = [in_root]
        in_root = posixpath.dirname(in_root)
    else:
        exts = image_suffixes()
        same_fs = type(in_fs) is type(out_fs)
        inside = same_fs and out_root != in_root and (out_root + "/").startswith(in_root + "/")
        inputs = []
        for info in in_fs.get_file_info(pafs.FileSelector(in_root, recursive=recursive)):
            if info.type != pafs.FileType.File:
                continue
            rel = relative(info.path, in_root)
            if hidden(rel) or posixpath.splitext(rel)[1].lower() not in exts or is_own_output(rel):
                continue
            if inside and (info.path + "/").startswith(out_root + "/"):
                continue  # the output folder is inside the input folder: never take outputs
            inputs.append(info.path)
        inputs.sort()
    done: set[str] = set()
    selector = pafs.FileSelector(out_root, recursive=True, allow_not_found=True)
    for info in out_fs.get_file_info(selector):
        if info.type != pafs.FileType.File:
            continue
        if info.path.endswith(TEMP_SUFFIX):
            logger.info("removing %s, left by an interrupted run", info.path)
            out_fs.delete_file(info.path)
        else:
            done.add(info.path)
    result = Plan([], 0, [])
    claimed: dict[str, str] = {}
    sources = set(inputs) if type(in_fs) is type(out_fs) else set()
    for path in inputs:
        dest = posixpath.join(out_root, output_name(relative(path, in_root), fmt))
        if dest in sources:
            result.failed.append(Failure(path, f"the output {dest} would overwrite an input"))
        elif dest in claimed:
            result.failed.append(
                Failure(path, f"the output {dest} is also that of {claimed[dest]}")
            )
        elif dest in done and existing == "skip":
            claimed[dest] = path
            result.skipped += 1
        elif dest in done and existing == "fail":
            result.failed.append(
                Failure(path, f"the output {dest} exists (use existing='skip' or 'overwrite')")
            )
        else:
            claimed[dest] = path
            result.todo.append(path)
    return result
