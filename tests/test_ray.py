"""rmbg on Ray Data (rmbg.ray): a cluster job gives exactly the library's results, nothing lost.

One Ray per setup for the whole module (start-up is slow): tests parametrised with
``ray_env`` run on a local Ray (``ray.init(num_cpus=2)``) and/or on a simulated two-node cluster
(``ray.cluster_utils.Cluster``); pytest groups them by setup, and each is shut down when its group
ends. The fake backend stands in for the network except in the one real-weight test.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs
import pytest
import ray  # the test extra installs rmbg[ray]: missing, these tests fail (never skip)
from PIL import Image

import rmbg.ray as rmbg_ray
from rmbg.errors import UnsupportedOptionError
from rmbg.options import CutoutOptions, MaskOptions
from rmbg.testing import FAKE_SOURCE, fake_remover

PHOTOS = Path(__file__).resolve().parents[1] / "src" / "rmbg" / "data" / "photos"
FAKE_CLI = Path(__file__).with_name("fake_cli.py")  # the real CLI, with --backend fake offered
FAKE = {"model": FAKE_SOURCE, "backend": "fake"}
OPTIONS = CutoutOptions(feather=1.0, grow=1)


@pytest.fixture(scope="module")
def ray_env(request, tmp_path_factory):
    """A running Ray: ``"local"`` (2 CPUs) or ``"cluster"`` (a head and a worker node, 1 CPU each).

    Its workers convert models into the same cache as the tests (conftest's private one).
    """
    if ray.is_initialized():
        ray.shutdown()
    cluster = None
    cache = os.environ.get("RMBG_CACHE_DIR") or str(tmp_path_factory.getbasetemp() / "rmbg-cache")
    env = {"env_vars": {"RMBG_CACHE_DIR": cache}}
    if request.param == "local":
        ray.init(num_cpus=2, include_dashboard=False, runtime_env=env, log_to_driver=False)
    else:
        from ray.cluster_utils import Cluster

        cluster = Cluster(
            initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
        )
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, runtime_env=env, log_to_driver=False)
        cluster.wait_for_nodes()
    try:
        yield request.param
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()


def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path) -> tuple[Path, dict[str, bytes], list[str]]:
    """Good images (JPEG, PNG with alpha, sub-folders), two corrupt ones, and files that are not
    inputs: a text file, a hidden image, a CLI output (``x.cutout.png``)."""
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    rng = np.random.default_rng(0)
    good: dict[str, bytes] = {}
    for i, name in enumerate(["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"]):
        data = (PHOTOS / name).read_bytes()
        rel = name if i % 2 else f"sub/{name}"
        good[rel] = data
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    good["sub/deeper/noise.png"] = buf.getvalue()
    good["small.jpg"] = _jpeg(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    for rel, data in good.items():
        (src / rel).write_bytes(data)
    bad = ["broken.jpg", "sub/truncated.png"]
    (src / "broken.jpg").write_bytes(b"this is not a JPEG")
    (src / "sub" / "truncated.png").write_bytes(good["sub/deeper/noise.png"][:60])
    (src / "notes.txt").write_text("not an image")
    (src / ".hidden.jpg").write_bytes(good["small.jpg"])
    (src / "old.cutout.png").write_bytes(good["sub/deeper/noise.png"])  # an earlier CLI output
    return src, good, bad


def _outputs(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _expected(good: dict[str, bytes], options=OPTIONS, kind="cutout") -> dict[str, bytes]:
    remover = fake_remover()
    call = remover.cutout if kind == "cutout" else remover.mask
    return {
        rel.rsplit(".", 1)[0] + ".png": call(data, options, output="png")
        for rel, data in good.items()
    }


# -- without Ray running --------------------------------------------------------------------------
def test_options_pickle_with_a_background_image():
    """Options travel to the actors by pickle: a decoded background image included."""
    bg = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    opts = CutoutOptions(background=bg, feather=2.0, trim=True, margin=3)
    back = pickle.loads(pickle.dumps(opts))
    assert back.replace(background=None) == opts.replace(background=None)
    np.testing.assert_array_equal(back.backdrop.colors, opts.backdrop.colors)
    assert pickle.loads(pickle.dumps(MaskOptions(threshold=0.5))) == MaskOptions(threshold=0.5)


def test_output_names_mirror_the_inputs():
    assert rmbg_ray.output_name("a/b/photo.jpg", "png") == "a/b/photo.png"
    assert rmbg_ray.output_name("photo.tar.jpeg", "webp") == "photo.tar.webp"
    assert rmbg_ray.output_name("noext", "png") == "noext.png"


def test_bad_options_fail_before_ray_starts(tmp_path):
    with pytest.raises(UnsupportedOptionError, match="kind"):
        rmbg_ray.remove_backgrounds(tmp_path, tmp_path / "o", kind="cutouts")
    with pytest.raises(UnsupportedOptionError, match="format"):
        rmbg_ray.remove_backgrounds(tmp_path, tmp_path / "o", format="jpg")
    with pytest.raises(UnsupportedOptionError, match="MaskOptions"):
        rmbg_ray.remove_backgrounds(tmp_path, tmp_path / "o", CutoutOptions(), kind="mask")
    with pytest.raises(UnsupportedOptionError, match="quality"):
        rmbg_ray.remove_backgrounds(tmp_path, tmp_path / "o", quality=80)
    with pytest.raises(UnsupportedOptionError, match="delay"):  # backend options, on the driver
        rmbg_ray.remove_backgrounds(
            tmp_path, tmp_path / "o", backend="fake", backend_options={"dealy": 1}
        )
    with pytest.raises(FileNotFoundError, match="no such file"):
        rmbg_ray.remove_backgrounds(tmp_path / "missing", tmp_path / "o")
    assert not ray.is_initialized()


# -- on Ray ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("ray_env", ["local", "cluster"], indirect=True)
def test_folder_gives_the_library_cutouts_and_one_failure_per_bad_file(ray_env, folder, tmp_path):
    src, good, bad = folder
    out = tmp_path / "out"
    result = rmbg_ray.remove_backgrounds(src, out, OPTIONS, **FAKE, batch_size=2, progress=False)

    assert result.processed == len(good)
    assert result.skipped == 0
    assert [f.input for f in result.failed] == sorted(str(src / b) for b in bad)
    assert all(f.error for f in result.failed)
    produced = _outputs(out)
    assert produced.keys() == _expected(good).keys()  # nothing for the bad files, no temp files
    assert produced == _expected(good)  # byte for byte the library's PNG

    again = rmbg_ray.remove_backgrounds(src, out, OPTIONS, **FAKE, progress=False)
    assert (again.processed, again.skipped, len(again.failed)) == (0, len(good), len(bad))


@pytest.fixture
def s3_server():
    """An S3 service on 127.0.0.1 (moto's server, a subprocess stopped after the test): the URI
    prefix ``s3://KEY:SECRET@`` and the query string that point pyarrow at it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "moto did not start"
                time.sleep(0.1)
        query = f"?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
        yield "s3://test:test@", query
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("ray_env", ["local"], indirect=True)
def test_s3_bucket_in_and_out_from_the_cli_and_the_library(ray_env, folder, s3_server, tmp_path):
    """Object storage through pyarrow's URIs (docs/scale.md), on a local S3 service: ``rmbg
    cutout --ray ADDRESS s3://... --out-dir s3://...`` writes the library's bytes (no temporary
    key left), one failure per bad file; the library's call on the same URIs then resumes."""
    prefix, query = s3_server
    src, good, bad = folder
    fs, _ = pafs.FileSystem.from_uri(f"{prefix}shop{query}&allow_bucket_creation=true")
    fs.create_dir("shop")
    for path in src.rglob("*"):
        if path.is_file():
            with fs.open_output_stream(f"shop/in/{path.relative_to(src).as_posix()}") as f:
                f.write(path.read_bytes())
    inp, out = f"{prefix}shop/in{query}", f"{prefix}shop/out{query}"
    model = tmp_path / "model.onnx"
    model.write_bytes(b"")
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, str(FAKE_CLI), "cutout", "--ray", address, inp, "--out-dir", out]
    command += ["-r", "--feather", "1", "--grow", "1", "--model", str(model), "--backend", "fake"]
    proc = subprocess.run(
        [*command, "--json", "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr  # the bad files
    report = json.loads(proc.stdout)
    assert report["processed"] == len(good)
    assert sorted(f["input"] for f in report["failed"]) == sorted(f"shop/in/{b}" for b in bad)
    produced = {}
    for info in fs.get_file_info(pafs.FileSelector("shop/out", recursive=True)):
        if info.type == pafs.FileType.File:
            with fs.open_input_stream(info.path) as f:
                produced[info.path.removeprefix("shop/out/")] = f.read()
    assert produced == _expected(good)  # byte for byte, no temporary keys left
    assert not (tmp_path / "s3:").exists() and not Path("s3:").exists()  # nothing local
    again = rmbg_ray.remove_backgrounds(inp, out, OPTIONS, **FAKE, progress=False)
    assert (again.processed, again.skipped, len(again.failed)) == (0, len(good), len(bad))


@pytest.mark.parametrize("ray_env", ["cluster"], indirect=True)
def test_an_actor_killed_mid_job_is_replaced_and_nothing_is_lost_or_doubled(
    ray_env, folder, tmp_path
):
    src, good, _ = folder
    for i in range(6):  # more batches, so that the crash falls mid-job
        (src / f"extra{i}.jpg").write_bytes(good["small.jpg"])
        good[f"extra{i}.jpg"] = good["small.jpg"]
    marker = tmp_path / "crashed"
    out = tmp_path / "out"
    result = rmbg_ray.remove_backgrounds(
        src,
        out,
        OPTIONS,
        **FAKE,
        backend_options={"crash_once": str(marker)},  # an actor dies after its first image
        batch_size=2,
        actors=2,
        cpus_per_actor=0.5,
        progress=False,
    )
    assert marker.exists()  # an actor did die, after its first image
    assert result.processed == len(good)
    assert _outputs(out) == _expected(good)  # every output once, complete; no temp file


_DRIVER = """
import sys, ray
from rmbg.options import CutoutOptions
from rmbg.ray import remove_backgrounds
from rmbg.testing import FAKE_SOURCE
ray.init(address=sys.argv[3])
remove_backgrounds(sys.argv[1], sys.argv[2], CutoutOptions(feather=1.0, grow=1), model=FAKE_SOURCE,
                   backend="fake", backend_options={"delay": 0.4}, batch_size=1, progress=False)
"""


@pytest.mark.parametrize("ray_env", ["local"], indirect=True)
def test_a_rerun_after_an_interrupted_job_does_only_what_was_missing(ray_env, folder, tmp_path):
    """The driver is killed (SIGKILL) mid-job; a rerun completes exactly what was missing."""
    src, good, bad = folder
    for i in range(8):  # a slow job (0.4 s per image), so that the kill falls mid-job
        (src / f"extra{i}.jpg").write_bytes(good["small.jpg"])
        good[f"extra{i}.jpg"] = good["small.jpg"]
    out = tmp_path / "out"
    address = ray.get_runtime_context().gcs_address
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER, str(src), str(out), address])
    try:
        deadline = time.monotonic() + 240
        while not (out.exists() and len(list(out.rglob("*.png"))) >= 3):
            assert driver.poll() is None, "the job ended before it could be interrupted"
            assert time.monotonic() < deadline, "no outputs appeared"
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    expected = _expected(good)
    done = {k: v for k, v in _outputs(out).items() if not k.rsplit("/", 1)[-1].startswith(".")}
    assert 3 <= len(done) < len(good)
    assert all(expected[k] == v for k, v in done.items())  # what exists is complete

    result = rmbg_ray.remove_backgrounds(src, out, OPTIONS, **FAKE, progress=False)
    assert result.skipped == len(done)
    assert result.processed == len(good) - len(done)
    assert len(result.failed) == len(bad)
    assert _outputs(out) == expected  # and no temporary file left behind


@pytest.mark.slow
@pytest.mark.realweights
@pytest.mark.parametrize("ray_env", ["local"], indirect=True)
def test_real_weights_on_ray_match_the_library(ray_env, standin_dir, tmp_path):
    from rmbg import BackgroundRemover

    src = tmp_path / "in"
    src.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg"):
        (src / name).write_bytes((PHOTOS / name).read_bytes())
    settings = {"model": str(standin_dir)}  # OpenVINO, default precision (bf16 here)
    result = rmbg_ray.remove_backgrounds(src, tmp_path / "out", **settings, progress=False)
    assert (result.processed, result.failed) == (2, [])
    remover = BackgroundRemover(**settings, backend_options={"performance_hint": "THROUGHPUT"})
    for name in ("chelsea", "coffee"):
        expected = remover.cutout((src / f"{name}.jpg").read_bytes(), output="png")
        assert (tmp_path / "out" / f"{name}.png").read_bytes() == expected


# -- the CLI --------------------------------------------------------------------------------------
def test_ray_flag_takes_an_optional_address():
    from rmbg.cli.on_ray import normalize_argv

    assert normalize_argv(["cutout", "--ray", "shop", "--out-dir", "o"])[1] == "--ray=local"
    for address in ("auto", "ray://head:10001", "10.0.0.1:6379", "local"):
        assert normalize_argv(["cutout", "--ray", address, "shop"])[2] == address
    assert normalize_argv(["cutout", "shop", "--ray"]) == ["cutout", "shop", "--ray"]


@pytest.mark.parametrize("ray_env", ["local"], indirect=True)
def test_cli_ray_gives_the_folder_mode_files(ray_env, folder, tmp_path):
    """``rmbg cutout --ray ADDRESS DIR --out-dir OUT`` and the folder mode, same flags: the same
    files byte for byte, the same failures, the same exit code."""
    src, good, bad = folder
    model = tmp_path / "model.onnx"
    model.write_bytes(b"")
    flags = ["-r", "--json", "--background", "white", "--feather", "1", "--trim", "--margin", "2"]
    flags += ["--model", str(model), "--backend", "fake", "-q"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def cli(*args: str) -> tuple[int, dict]:
        proc = subprocess.run(
            [sys.executable, str(FAKE_CLI), "cutout", *args, *flags],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        return proc.returncode, json.loads(proc.stdout)

    address = ray.get_runtime_context().gcs_address
    code, report = cli("--ray", address, str(src), "--out-dir", str(tmp_path / "ray"))
    folder_code, folder_report = cli(str(src), "--out-dir", str(tmp_path / "folder"))
    assert code == folder_code == 1  # some inputs failed
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "folder")
    assert len(_outputs(tmp_path / "ray")) == len(good)
    assert report["processed"] == folder_report["processed"] == len(good)
    assert sorted(f["input"] for f in report["failed"]) == sorted(str(src / b) for b in bad)
    assert len(folder_report["failed"]) == len(bad)

    code, report = cli(
        "--ray", address, str(src), "--out-dir", str(tmp_path / "ray"), "--skip-existing"
    )
    assert (report["processed"], report["skipped"]) == (0, len(good))


@pytest.mark.parametrize("ray_env", ["local"], indirect=True)
def test_map_batches_masks_as_arrays_webp_and_strict(ray_env, folder):
    src, good, bad = folder
    paths = [str(src / rel) for rel in sorted(good)] + [str(src / bad[0])]
    ds = ray.data.read_binary_files(paths, include_paths=True)
    opts = MaskOptions(threshold=0.5)
    rows = ds.map_batches(
        rmbg_ray.RemoveBackgrounds,
        fn_constructor_kwargs={"kind": "mask", "options": opts, "output": "array", **FAKE},
        compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=0.1,  # Ray may keep a take_all() pool's actor a while: never block later jobs
        batch_size=3,
    ).take_all()
    by_path = {r["path"]: r for r in rows}
    assert len(rows) == len(paths)
    remover = fake_remover()
    for rel, data in good.items():
        row = by_path[str(src / rel)]
        assert row[rmbg_ray.ERROR_COLUMN] is None
        np.testing.assert_array_equal(
            row[rmbg_ray.RESULT_COLUMN], remover.mask(data, opts, output="array")
        )
    failed = by_path[str(src / bad[0])]
    assert failed[rmbg_ray.ERROR_COLUMN]
    assert failed[rmbg_ray.RESULT_COLUMN].size == 0

    webp = ds.map_batches(
        rmbg_ray.RemoveBackgrounds,
        fn_constructor_kwargs={"output": "webp", **FAKE},
        compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=0.1,  # Ray may keep a take_all() pool's actor a while: never block later jobs
    ).take_all()
    for row in webp:
        if row["path"].endswith("broken.jpg"):
            assert row[rmbg_ray.RESULT_COLUMN] is None
            continue
        rel = os.path.relpath(row["path"], src)
        decoded = np.asarray(Image.open(io.BytesIO(row[rmbg_ray.RESULT_COLUMN])))
        expected = remover.cutout(good[rel], output="array")
        # lossless: the same alpha, the same colours wherever visible (WebP, like the CLI's,
        # may store anything under fully transparent pixels)
        np.testing.assert_array_equal(decoded[..., 3], expected[..., 3])
        visible = expected[..., 3] > 0
        np.testing.assert_array_equal(decoded[visible], expected[visible])

    strict = ds.map_batches(
        rmbg_ray.RemoveBackgrounds,
        fn_constructor_kwargs={"strict": True, **FAKE},
        compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=0.1,  # Ray may keep a take_all() pool's actor a while: never block later jobs
        max_task_retries=0,
    )
    with pytest.raises(Exception, match=r"broken\.jpg: .*not an image.*strict=True"):
        strict.take_all()
