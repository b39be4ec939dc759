"""rmbg._parallel: the shared pool that splits numpy work in row blocks, and what runs on it
(resizes, normalisation, RGBA assembly, PNG deflate) giving the same bytes from any thread."""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
import time

import numpy as np
import pytest

from rmbg import _parallel
from rmbg._png import encode_png
from rmbg.compose import compose
from rmbg.postprocess import postprocess
from rmbg.preprocess import preprocess


def test_results_come_back_in_order_and_every_range_runs_once():
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(a: int, b: int) -> int:
        with lock:
            seen.append((a, b))
        time.sleep(0.001 * (b % 3))  # out-of-order finishing
        return a * 1000 + b

    ranges = [(i, i + 1) for i in range(40)]
    assert _parallel.run(work, ranges) == [i * 1000 + i + 1 for i in range(40)]
    assert sorted(seen) == ranges


def test_split_covers_the_job_in_contiguous_ranges(monkeypatch):
    monkeypatch.setenv("RMBG_NUM_THREADS", "3")
    assert _parallel.split(10, 1) == [(0, 3), (3, 6), (6, 10)]
    assert _parallel.split(10, 4) == [(0, 5), (5, 10)]
    assert _parallel.split(10, 100) == [(0, 10)]  # small jobs stay on the calling thread
    assert _parallel.split(0, 1) == []


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("4", 4), ("0", 1), ("lots", None)])
def test_num_threads_follows_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("RMBG_NUM_THREADS", value)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    default = max(1, min(8, usable or 1))
    assert _parallel.num_threads() == (expected if expected is not None else default)


def test_one_thread_means_the_calling_thread_only(monkeypatch):
    monkeypatch.setenv("RMBG_NUM_THREADS", "1")
    threads = set()
    _parallel.run(lambda a, b: threads.add(threading.get_ident()), [(0, 1), (1, 2), (2, 3)])
    assert threads == {threading.get_ident()}


def test_the_first_error_is_raised_and_no_new_range_starts_after_it(monkeypatch):
    monkeypatch.setenv("RMBG_NUM_THREADS", "2")
    started = []

    def work(a: int, b: int) -> None:
        started.append(a)
        if a == 1:
            raise ValueError("range 1 is bad")
        time.sleep(0.01)

    with pytest.raises(ValueError, match="range 1 is bad"):
        _parallel.run(work, [(i, i + 1) for i in range(50)])
    assert len(started) < 50


def test_nested_calls_run_inline_instead_of_deadlocking(monkeypatch):
    monkeypatch.setenv("RMBG_NUM_THREADS", "8")

    def inner(a: int, b: int) -> int:
        return sum(_parallel.run(lambda x, y: x + y, [(a, b), (b, b + 1)]))

    ranges = [(i, i + 1) for i in range(32)]
    assert _parallel.run(inner, ranges) == [2 * i + 1 + 2 * i + 3 for i in range(32)]


def test_many_callers_at_once_get_the_same_bytes_as_one(monkeypatch):
    """The batch API's workers and user threads share the pool: results must not depend on it."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    raw = rng.random((1, 1, 1024, 1024), dtype=np.float32)
    alpha = rng.integers(0, 256, (1500, 2000), dtype=np.uint8)

    def everything() -> tuple[bytes, ...]:
        mask = postprocess(raw, (1500, 2000))
        cut = compose(rgb, alpha)
        return preprocess(rgb).tobytes(), mask.tobytes(), cut.tobytes(), encode_png(cut)

    monkeypatch.setenv("RMBG_NUM_THREADS", "1")
    serial = everything()
    monkeypatch.setenv("RMBG_NUM_THREADS", "4")
    with cf.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: everything(), range(6)))
    for result in results:
        assert result == serial


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_forked_child_gets_a_working_pool(monkeypatch):
    """multiprocessing's fork start method (and data loaders built on it) copy the process with
    the pool object but without its threads: the child must neither hang nor fail."""
    import multiprocessing

    monkeypatch.setenv("RMBG_NUM_THREADS", "2")
    rgb = np.random.default_rng(1).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    expected = preprocess(rgb)  # the parent's pool has threads now
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        child = pool.apply_async(preprocess, (rgb,)).get(timeout=120)
    np.testing.assert_array_equal(child, expected)


def test_a_busy_pool_never_makes_a_caller_wait(monkeypatch):
    """Helpers queued behind other work are cancelled once the caller has done every range."""
    monkeypatch.setenv("RMBG_NUM_THREADS", "8")
    release = threading.Event()
    blockers = [_parallel._pool().submit(release.wait) for _ in range(8)]  # every pool thread busy
    try:
        started = time.perf_counter()
        assert _parallel.run(lambda a, b: a + b, [(i, i) for i in range(10)]) == [
            2 * i for i in range(10)
        ]
        assert time.perf_counter() - started < 5
    finally:
        release.set()
        cf.wait(blockers)
