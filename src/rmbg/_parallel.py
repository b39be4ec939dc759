"""Split numpy work over a few threads: one small shared pool, the caller working too.

numpy (and zlib/ISA-L) release the GIL inside their loops, so the row blocks of a resize, a
normalisation, a composition or a PNG's deflate run in parallel on threads. :func:`run` works
through a job's ranges on the calling thread *and* on a few threads of a shared pool, each taking
the next range nobody has taken: a pool kept busy by other callers (the batch API's workers,
several user threads) never makes a call wait in a queue -- the caller does the work itself --
and a call made from a pool thread (nested) runs inline. Results come back in order. A forked
child (multiprocessing's default start method on Linux, many data loaders) gets a fresh pool.

The number of threads is ``RMBG_NUM_THREADS`` when set (``1`` disables the splitting), else the
number of CPUs the process may run on (its affinity), at most 8. Container CPU quotas are not
visible that way: set ``RMBG_NUM_THREADS`` to the quota there.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["num_threads", "run", "split"]

T = TypeVar("T")

_MAX_THREADS = 8
_lock = threading.Lock()
_executor: cf.ThreadPoolExecutor | None = None
_local = threading.local()


def num_threads() -> int:
    """Threads a job is split over: ``RMBG_NUM_THREADS``, else the usable CPUs (at most 8)."""
    text = os.environ.get("RMBG_NUM_THREADS", "").strip()
    if text:
        try:
            return max(1, int(text))
        except ValueError:
            pass  # a bad value must not break a library call: fall back to the default
    return max(1, min(_MAX_THREADS, _usable_cpus()))


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. ``taskset``/cpusets), not the
    machine's."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if count is not None:
        return int(count() or 1)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: start a new pool there."""
    global _executor, _lock
    _executor = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_pool)


def _pool() -> cf.ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = cf.ThreadPoolExecutor(_MAX_THREADS, thread_name_prefix="rmbg-worker")
        return _executor


def split(total: int, min_size: int) -> list[tuple[int, int]]:
    """``[0, total)`` cut into at most :func:`num_threads` contiguous ranges of ``>= min_size``
    items (one range when the job is small)."""
    parts = max(1, min(num_threads(), total // max(1, min_size)))
    bounds = [total * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts) if bounds[i] < bounds[i + 1]]


def run(fn: Callable[[int, int], T], ranges: Sequence[tuple[int, int]]) -> list[T]:
    """``[fn(a, b) for a, b in ranges]``, shared by the calling thread and up to
    ``num_threads() - 1`` pool threads, each taking the next range not yet taken.

    ``fn`` must be safe to run concurrently on distinct ranges (typically: writes to disjoint
    rows of a preallocated array). After an error no new range is started; the first error is
    raised once the ranges in progress are done.
    """
    n = len(ranges)
    helpers = min(num_threads(), n) - 1
    if helpers < 1 or getattr(_local, "inside", False):
        return [fn(a, b) for a, b in ranges]
    results: list[T | None] = [None] * n
    errors: list[BaseException] = []
    taken = 0
    take_lock = threading.Lock()

    def work() -> None:
        nonlocal taken
        while True:
            with take_lock:
                if taken >= n or errors:
                    return
                i = taken
                taken += 1
            try:
                results[i] = fn(*ranges[i])
            except BaseException as exc:  # handed to the caller below
                with take_lock:
                    errors.append(exc)
                return

    def in_pool() -> None:
        _local.inside = True
        try:
            work()
        finally:
            _local.inside = False

    futures = [_pool().submit(in_pool) for _ in range(helpers)]
    work()
    # helpers that never started (a busy pool, or a forked child's pool) are cancelled, not waited
    # for: cf.wait would block on a cancelled future until a pool thread dequeued it
    cf.wait([future for future in futures if not future.cancel()])
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]
