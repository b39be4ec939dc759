"""rmbg.remove(): one line, a process-wide remover built once and reused."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import rmbg
import rmbg.remover
from rmbg.testing import fake_remover


@pytest.fixture
def fresh_default():
    rmbg.set_default_remover(None)
    yield
    rmbg.set_default_remover(None)


def test_remove_is_the_default_removers_cutout(fresh_default):
    remover = fake_remover()
    rmbg.set_default_remover(remover)
    rgb = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(rmbg.remove(rgb), remover.cutout(rgb))
    np.testing.assert_array_equal(
        rmbg.remove(rgb, background="white", trim=True),
        remover.cutout(rgb, background="white", trim=True),
    )
    np.testing.assert_array_equal(
        rmbg.remove_mask(rgb, invert=True), remover.mask(rgb, invert=True)
    )
    assert rmbg.remove(rgb, output="png").startswith(b"\x89PNG")
    assert rmbg.default_remover() is remover


def test_default_remover_is_built_once_across_threads(fresh_default, monkeypatch):
    built = []
    gate = threading.Barrier(8)
    one = fake_remover()

    def factory(*args, **kwargs):
        built.append(1)
        time.sleep(0.2)  # loading a model takes a while: the other threads arrive meanwhile
        return one

    monkeypatch.setattr(rmbg.remover, "BackgroundRemover", factory)
    seen = []

    def ask():
        gate.wait()
        seen.append(rmbg.default_remover())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len({id(r) for r in seen}) == 1


def test_bad_options_fail_before_the_model_loads(fresh_default, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the model must not be loaded for a bad option")

    monkeypatch.setattr(rmbg.remover, "BackgroundRemover", never)
    rmbg.set_default_remover(None)
    with pytest.raises(rmbg.UnsupportedOptionError):
        rmbg.remove(np.zeros((4, 4, 3), np.uint8), feather=-1)
