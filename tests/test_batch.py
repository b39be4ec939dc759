"""The pipelined batch API: ``remover.masks(iterable)`` / ``remover.cutouts(iterable)``.

On the fake backend (no weights, milliseconds per image): order, errors in place, laziness of the
input, equality with the per-image calls, real overlap between images, early stop; and the
``input_size=`` option. One real-weight test checks the OpenVINO engine under the pipeline.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image

from rmbg.errors import InvalidImageError, UnsupportedOptionError
from rmbg.testing import FAKE_SOURCE, fake_remover

from .helpers import PHOTOS, load_photo, mask_stats


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [(int(rng.integers(8, 90)), int(rng.integers(8, 90))) for _ in range(n)]
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in sizes]


class Recorder:
    """An input iterable that records how far it has been consumed."""

    def __init__(self, items: list[object]) -> None:
        self.items = items
        self.pulled = 0

    def __iter__(self):
        for item in self.items:
            self.pulled += 1
            yield item


def test_results_come_in_input_order_and_equal_the_per_image_calls():
    remover = fake_remover()
    images = _images(12)
    masks = list(remover.masks(images, workers=4))
    cutouts = list(remover.cutouts(images, workers=4, background="white"))
    assert len(masks) == len(cutouts) == len(images)
    for image, mask, cut in zip(images, masks, cutouts, strict=True):
        np.testing.assert_array_equal(mask, remover.mask(image))
        np.testing.assert_array_equal(cut, remover.cutout(image, background="white"))


def test_order_holds_when_later_images_finish_first(monkeypatch):
    remover = fake_remover()
    images = _images(6, seed=3)  # different sizes and contents: every mask differs
    for i, image in enumerate(images):
        image[0, 0, 0] = i  # which image a worker holds
    expected = [remover.mask(image) for image in images]
    assert all(
        a.shape != b.shape or not np.array_equal(a, b)
        for k, a in enumerate(expected)
        for b in expected[k + 1 :]
    )
    last_done = threading.Event()
    finished: list[int] = []
    real = remover._mask  # what each batch worker runs per image

    def slow_mask(image, *args, **kwargs):
        i = int(image[0, 0, 0])
        if i == 0:  # the first image finishes only after the last one
            assert last_done.wait(10), "the pipeline did not run the images concurrently"
        mask = real(image, *args, **kwargs)
        finished.append(i)
        if i == len(images) - 1:
            last_done.set()
        return mask

    monkeypatch.setattr(remover, "_mask", slow_mask)
    out = list(remover.masks(images, workers=len(images)))
    assert sorted(finished) == list(range(len(images)))  # every image went through the spy
    assert finished.index(len(images) - 1) < finished.index(0)  # the premise held
    assert len(out) == len(expected)
    for got, want in zip(out, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_options_reach_every_image():
    remover = fake_remover()
    images = _images(3)
    for got, image in zip(remover.masks(images, threshold=0.5, invert=True), images, strict=True):
        np.testing.assert_array_equal(got, remover.mask(image, threshold=0.5, invert=True))
        assert set(np.unique(got)) <= {0, 255}


def test_return_exceptions_yields_the_error_in_place():
    remover = fake_remover()
    good = _images(4)
    items: list[object] = [
        good[0],
        b"not an image",
        good[1],
        np.zeros((0, 5, 3), np.uint8),
        good[2],
    ]
    out = list(remover.masks(items, return_exceptions=True))
    assert len(out) == len(items)
    assert isinstance(out[1], InvalidImageError)
    assert isinstance(out[3], InvalidImageError)
    for i, j in ((0, 0), (2, 1), (4, 2)):
        np.testing.assert_array_equal(out[i], remover.mask(good[j]))


def test_without_return_exceptions_the_error_is_raised_at_its_position():
    remover = fake_remover()
    good = _images(3)
    results = remover.masks([good[0], good[1], b"garbage", good[2]])
    seen = [next(results), next(results)]  # the results before the bad image come first
    with pytest.raises(InvalidImageError):
        next(results)
    assert len(seen) == 2


def test_input_is_consumed_lazily_and_a_bounded_distance_ahead():
    remover = fake_remover()
    source = Recorder(list(_images(50)))
    results = remover.masks(source, workers=3)
    assert source.pulled == 0  # nothing happens before the first result is asked for
    next(results)
    assert source.pulled <= 3 + 1
    for _ in range(5):
        next(results)
    assert source.pulled <= 6 + 3
    results.close()


def test_an_endless_input_works_and_stopping_early_stops_reading():
    remover = fake_remover()
    pulled = []

    def endless():
        rng = np.random.default_rng(3)
        while True:
            pulled.append(1)
            yield rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8)

    for i, _ in enumerate(remover.masks(endless(), workers=2)):
        if i == 4:
            break
    time.sleep(0.05)
    n = len(pulled)
    time.sleep(0.1)
    assert len(pulled) == n <= 5 + 2 + 1  # no reading after the consumer stopped


def test_images_overlap_in_time(monkeypatch):
    from rmbg.testing import FakeEngine

    lock = threading.Lock()
    running = [0]
    peak = [0]
    real = FakeEngine.__call__

    def tracking(self, batch):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            return real(self, batch)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(FakeEngine, "__call__", tracking)
    # the fake engine sleeps per call, releasing the GIL like a real inference
    remover = fake_remover(backend_options={"delay": 0.2}, input_size=256)
    list(remover.masks(_images(6), workers=3))
    assert peak[0] >= 2  # a second image reached the engine while the first was in it


def test_work_runs_on_worker_threads_and_then_is_applied_there():
    remover = fake_remover()
    names = []

    def then(result):
        names.append(threading.current_thread().name)
        return result.shape

    out = list(remover.cutouts(_images(4), then=then))
    assert all(isinstance(s, tuple) and s[2] == 4 for s in out)
    assert all(name.startswith("rmbg") for name in names)


def test_file_inputs_come_back_as_pil_images(tmp_path):
    remover = fake_remover()
    paths = []
    for i, image in enumerate(_images(3)):
        p = tmp_path / f"{i}.png"
        Image.fromarray(image).save(p)
        paths.append(p)
    out = list(remover.cutouts(paths))
    assert [im.mode for im in out] == ["RGBA"] * 3
    assert [im.size for im in out] == [Image.open(p).size for p in paths]


@pytest.mark.parametrize("workers", [0, -1])
def test_workers_must_be_positive(workers):
    with pytest.raises(UnsupportedOptionError):
        list(fake_remover().masks(_images(1), workers=workers))


def test_an_empty_input_yields_nothing():
    assert list(fake_remover().masks([])) == []


# -- input_size= ------------------------------------------------------------------------------------
def test_input_size_changes_the_network_input():
    from rmbg import BackgroundRemover

    remover = BackgroundRemover(FAKE_SOURCE, backend="fake", input_size=512)
    assert remover.spec.input_size == (512, 512)
    remover = BackgroundRemover(FAKE_SOURCE, backend="fake", input_size=(768, 512))
    assert remover.spec.input_size == (768, 512)
    assert remover.mask(_images(1)[0]).dtype == np.uint8


@pytest.mark.parametrize("size", [100, 0, (512,), (512, 500), 128, True, "512"])
def test_input_size_is_validated(size):
    from rmbg import BackgroundRemover

    with pytest.raises(UnsupportedOptionError, match="input_size"):
        BackgroundRemover(FAKE_SOURCE, backend="fake", input_size=size)


# -- the real engine under the pipeline ---------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.realweights
def test_openvino_pipeline_equals_per_image_masks(standin_dir):
    from rmbg import BackgroundRemover

    remover = BackgroundRemover(standin_dir, precision="f32", device="CPU")
    photos = [load_photo(name) for name in PHOTOS]
    batch = list(remover.masks(photos, workers=3))
    for photo, mask in zip(photos, batch, strict=True):
        stats = mask_stats(mask, remover.mask(photo))
        assert stats["max"] == 0, stats  # same engine, same pre/post: bit-identical
