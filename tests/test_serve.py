"""``rmbg serve`` through real HTTP: the ``rmbg serve`` command on 127.0.0.1 (port 0, read back from
uvicorn's log) in a subprocess, an httpx client, the process always stopped in the fixture.

Most servers run the fake backend (``--backend fake`` with an empty ``model.onnx``, as the CLI
tests do: real decoding, options, compositing and encoding; no network), so results can be
compared exactly with what the library returns in this process. ``--backend-option delay=S``
makes each inference take S seconds, which is how the queue, deadline and SIGTERM tests hold
requests in flight. One test runs the stand-in checkpoint on OpenVINO (slow, realweights).
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import contextlib
import http.server
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx  # rmbg[test] installs httpx and rmbg[serve]: missing, these tests fail (never skip)
import numpy as np
import pytest
from PIL import Image

from rmbg.errors import InvalidImageError, UnsupportedOptionError
from rmbg.options import CutoutOptions
from rmbg.testing import fake_remover

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "src" / "rmbg" / "data" / "photos"
STARTUP = 60.0  # seconds for a server to say where it listens and load its model


#: ``rmbg serve`` with the fake backend offered (the CLI hides it from users; tests unhide it in
#: the process they drive, as tests/test_cli.py does in its own).
LAUNCH = (
    "import sys, rmbg.cli.flags as flags; flags.HIDDEN_BACKENDS = frozenset(); "
    "from rmbg.cli import main; sys.exit(main(['serve', *sys.argv[1:]]))"
)


class Server:
    """An ``rmbg serve`` subprocess; ``url`` once it listens."""

    def __init__(self, args: list[str], env: dict[str, str], *, ready: bool = True) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.log: list[str] = []
        self._found = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()
        if not self._found.wait(STARTUP):
            self.stop()
            raise AssertionError("server did not start:\n" + "".join(self.log))
        if ready:
            self.wait_ready()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            m = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
            if m and not self.url:
                self.url = m.group(1)
                self._found.set()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health/ready", timeout=5).status_code == 200:
                    return
            time.sleep(0.05)
        raise AssertionError("server never became ready:\n" + "".join(self.log))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    out["RMBG_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    out.pop("RMBG_TOKEN", None)
    return out


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    model = tmp_path_factory.mktemp("model") / "model.onnx"
    model.write_bytes(b"")
    return ["--model", str(model), "--backend", "fake"]


@contextlib.contextmanager
def serving(env: dict[str, str], *args: str) -> Iterator[Server]:
    server = Server(list(args), env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(env: dict[str, str], fake_model: list[str]) -> Iterator[Server]:
    with serving(env, *fake_model, "--max-upload-mb", "1", "--max-pixels", "4000000") as s:
        yield s


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def library():
    """The library in this process, with the service's settings (the backend's batch options)."""
    return fake_remover(backend_options={"performance_hint": "THROUGHPUT"})


@pytest.fixture(scope="module")
def photo() -> bytes:
    """A small JPEG of a real photo (the bundled astronaut at 160x160)."""
    with Image.open(PHOTOS / "astronaut.jpg") as im:
        small = im.convert("RGB").resize((160, 160))
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


def jpeg(_: bytes) -> dict[str, str]:
    return {"content-type": "image/jpeg"}


def test_python_m_rmbg_serve_is_the_serve_command(env) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rmbg.serve", "--help"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: rmbg serve")
    assert "--max-queue" in out.stdout
    assert "fake" not in out.stdout  # the test backend is not offered to users


# -- endpoints and encodings ---------------------------------------------------------------------
def test_health_info_metrics_and_docs(client: httpx.Client) -> None:
    assert client.get("/health/live").json() == {"status": "alive"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    info = client.get("/v1/info").json()
    assert info["backend"] == "fake"
    assert info["ready"] is True
    assert info["max_pixels"] == 4_000_000
    assert info["limits"]["max_upload_mb"] == 1
    assert info["limits"]["token"] is None
    assert info["workers"] == info["infer_requests"] + 2
    assert "threshold" in info["options"]["mask"]
    schema = client.get("/openapi.json").json()
    cutout = schema["paths"]["/v1/cutout"]["post"]
    assert {p["name"] for p in cutout["parameters"]} >= {*CutoutOptions.names(), "format"}
    assert set(cutout["requestBody"]["content"]) >= {"image/*", "multipart/form-data"}
    assert "/api/remove" in schema["paths"]
    assert client.get("/docs").status_code == 200
    assert "access-control-allow-origin" not in client.get("/health/live").headers


def test_cutout_raw_body_equals_the_library(client, library, photo) -> None:
    r = client.post("/v1/cutout", content=photo, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    got = decode(r.content)
    assert got.shape == (160, 160, 4)
    np.testing.assert_array_equal(got, library.cutout(photo, output="array"))
    stages = {
        item.split(";")[0].strip(): float(item.split("dur=")[1])
        for item in r.headers["server-timing"].split(",")
    }
    assert set(stages) == {"read", "queue", "compute"}
    assert all(v >= 0 for v in stages.values())


@pytest.mark.parametrize("encoding", ["raw", "octet", "multipart", "json", "data-url"])
def test_every_input_encoding_gives_the_same_mask(client, library, photo, encoding) -> None:
    kwargs: dict = {}
    if encoding == "raw":
        kwargs = {"content": photo, "headers": {"content-type": "image/jpeg"}}
    elif encoding == "octet":
        kwargs = {"content": photo, "headers": {"content-type": "application/octet-stream"}}
    elif encoding == "multipart":
        kwargs = {"files": {"file": ("p.jpg", photo, "image/jpeg")}}
    elif encoding == "json":
        kwargs = {"json": {"image": base64.b64encode(photo).decode()}}
    else:
        kwargs = {"json": {"image": "data:image/jpeg;base64," + base64.b64encode(photo).decode()}}
    r = client.post("/v1/mask", **kwargs)
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(decode(r.content), library.mask(photo, output="array"))


@pytest.mark.parametrize("where", ["query", "form", "json"])
def test_options_from_query_form_or_json(client, library, photo, where) -> None:
    options = {"threshold": "0.5", "grow": "2", "invert": "true"}
    if where == "query":
        r = client.post("/v1/mask", params=options, content=photo, headers=jpeg(photo))
    elif where == "form":
        r = client.post("/v1/mask", data=options, files={"file": ("p.jpg", photo, "image/jpeg")})
    else:
        body = {"image": base64.b64encode(photo).decode(), "threshold": 0.5, "grow": 2}
        r = client.post("/v1/mask", json={**body, "invert": True})
    assert r.status_code == 200, r.text
    expected = library.mask(photo, threshold=0.5, grow=2, invert=True, output="array")
    np.testing.assert_array_equal(decode(r.content), expected)


def test_formats_by_name_and_by_accept(client, library, photo) -> None:
    expected = library.cutout(photo, background="white", output="array")
    r = client.post(
        "/v1/cutout", params={"background": "white", "format": "webp"}, content=photo,
        headers=jpeg(photo),
    )  # fmt: skip
    assert r.headers["content-type"] == "image/webp"
    np.testing.assert_array_equal(decode(r.content), expected)  # lossless WebP by default
    r = client.post(
        "/v1/cutout", params={"background": "white"}, content=photo,
        headers={"content-type": "image/jpeg", "accept": "image/avif, image/jpeg;q=0.9, */*"},
    )  # fmt: skip
    assert r.headers["content-type"] == "image/jpeg"
    got = decode(r.content)
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected).mean() < 3  # JPEG at quality 95
    r = client.post("/v1/mask", params={"format": "webp", "quality": "80"}, content=photo,
                    headers=jpeg(photo))  # fmt: skip
    assert r.status_code == 200
    grey = decode(r.content)  # WebP has no grey mode: a mask decodes as RGB with equal channels
    assert grey.shape == (160, 160, 3)
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])


def test_background_image_part(client, library, photo) -> None:
    backdrop = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(backdrop, "PNG")
    r = client.post(
        "/v1/cutout",
        files={
            "file": ("p.jpg", photo, "image/jpeg"),
            "background": ("b.png", backdrop.getvalue(), "image/png"),
        },
    )
    assert r.status_code == 200, r.text
    expected = library.cutout(photo, background=backdrop.getvalue(), output="array")
    np.testing.assert_array_equal(decode(r.content), expected)


# -- rembg-compatible route ----------------------------------------------------------------------
def test_rembg_route_alpha_equals_the_library(client, library, photo) -> None:
    r = client.post("/api/remove", files={"file": ("p.jpg", photo, "image/jpeg")})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    got = decode(r.content)
    np.testing.assert_array_equal(got[..., 3], library.cutout(photo, output="array")[..., 3])
    assert "x-rmbg-ignored" not in r.headers


def test_rembg_fields(client, library, photo) -> None:
    files = {"file": ("p.jpg", photo, "image/jpeg")}
    r = client.post("/api/remove", files=files, data={"om": "true", "model": "u2net", "a": "false"})
    np.testing.assert_array_equal(decode(r.content), library.mask(photo, output="array"))
    assert r.headers["x-rmbg-ignored"] == "a, model"
    r = client.post("/api/remove", files=files, params={"bgc": "255,0,0,255"})
    expected = library.cutout(photo, background=(255, 0, 0, 255), output="array")
    np.testing.assert_array_equal(decode(r.content), expected)
    r = client.post("/api/remove", files=files, data={"ppm": "true", "om": "1"})
    np.testing.assert_array_equal(
        decode(r.content), library.mask(photo, threshold=0.5, output="array")
    )
    r = client.post("/api/remove", files=files, data={"alpha": "1"})
    assert r.status_code == 422
    assert "Unknown field(s) for /api/remove: alpha" in r.json()["detail"]


# -- bad input, each with its status and the library's message -------------------------------------
def wait_for_metric(client: httpx.Client, text: str, seconds: float = 15.0) -> str:
    """The metrics once they contain ``text`` (fails after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        metrics = client.get("/metrics").text
        if text in metrics:
            return metrics
        assert time.monotonic() < deadline, f"{text!r} never appeared in the metrics"
        time.sleep(0.02)


def library_message(call) -> str:
    with pytest.raises((InvalidImageError, UnsupportedOptionError)) as info:
        call()
    return str(info.value)


def test_not_an_image_is_400_with_the_library_message(client, library) -> None:
    r = client.post("/v1/cutout", content=b"not an image", headers={"content-type": "image/png"})
    assert r.status_code == 400
    assert r.json() == {
        "error": "InvalidImageError",
        "detail": library_message(lambda: library.cutout(b"not an image")),
    }
    r = client.post("/v1/cutout", json={"image": "%%%"})
    assert r.status_code == 400
    assert "base64" in r.json()["detail"]
    r = client.post("/v1/cutout", json={"threshold": 0.5})
    assert r.status_code == 400
    assert "No image" in r.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"threshold": "2"},
        {"grow": "x"},
        {"margin": "4"},
        {"colour": "red"},
        {"background": "nocolour"},
    ],
)
def test_bad_option_is_422_with_the_library_message(client, photo, params) -> None:
    r = client.post("/v1/cutout", params=params, content=photo, headers=jpeg(photo))
    assert r.status_code == 422
    assert r.json() == {
        "error": "UnsupportedOptionError",
        "detail": library_message(lambda: CutoutOptions.from_strings(params)),
    }


def test_other_422s(client, photo) -> None:
    cases = [
        ({"format": "jpg"}, "JPEG has no transparency"),
        ({"format": "gif"}, "format='gif' is not one of"),
        ({"quality": "80"}, "quality applies to webp and jpg"),
        ({"format": "webp", "quality": "0"}, "quality='0' is not a whole number from 1 to 100"),
    ]
    for params, text in cases:
        r = client.post("/v1/cutout", params=params, content=photo, headers=jpeg(photo))
        assert r.status_code == 422, params
        assert text in r.json()["detail"]
    r = client.post(
        "/v1/mask", params={"grow": "1"}, data={"grow": "2"},
        files={"file": ("p.jpg", photo, "image/jpeg")},
    )  # fmt: skip
    assert r.status_code == 422
    assert "grow given both in the query and in the body" in r.json()["detail"]
    r = client.post("/v1/cutout", json={"url": "http://127.0.0.1:1/x.jpg"})
    assert r.status_code == 422
    assert "does not fetch URLs" in r.json()["detail"]
    assert client.get("/api/remove", params={"url": "http://127.0.0.1:1/x.jpg"}).status_code == 422


def test_unsupported_media_type_is_415(client, photo) -> None:
    r = client.post("/v1/cutout", content=photo, headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert r.json()["error"] == "UnsupportedMediaType"
    r = client.post(
        "/v1/cutout", content=photo,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert r.status_code == 415
    assert "Content-Type: image/jpeg" in r.json()["detail"]


def raw_request(url: str, head: str, chunks: list[bytes], delay: float = 0.0) -> bytes:
    """Send ``head`` and then ``chunks`` on a socket (stopping when the server answers)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:
                break
            time.sleep(delay)
        sock.settimeout(10)
        data = b""
        with contextlib.suppress(OSError):
            while True:
                head, sep, body = data.partition(b"\r\n\r\n")
                length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
                if sep and length and len(body) >= int(length.group(1)):
                    break
                part = sock.recv(65536)
                if not part:
                    break
                data += part
        return data


def test_upload_cap_answers_413_before_reading_the_body(server: Server) -> None:
    # announced too large: 413 with not one byte of the body sent
    head = (
        "POST /v1/cutout HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {200 * 1024 * 1024}\r\n\r\n"
    )
    answer = raw_request(server.url, head, [])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"PayloadTooLarge" in answer
    # chunked, no length: 413 once the cap (1 MiB) is crossed, long before the 20 MiB are sent
    head = (
        "POST /v1/cutout HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (256 * 1024, b"\0" * (256 * 1024))
    answer = raw_request(server.url, head, [chunk] * 80, delay=0.01)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_pixel_limit_is_413(client) -> None:
    bomb = io.BytesIO()
    Image.new("L", (3000, 3000)).save(bomb, "PNG")  # 9 MP in a few KB; the limit is 4 MP
    assert len(bomb.getvalue()) < 100_000
    r = client.post("/v1/mask", content=bomb.getvalue(), headers={"content-type": "image/png"})
    assert r.status_code == 413
    assert r.json()["error"] == "ImageTooLargeError"


def test_unknown_path_is_json_404_and_service_keeps_serving(client, photo) -> None:
    r = client.get("/v2/nothing")
    assert r.status_code == 404
    assert r.json()["error"] == "NotFound"
    assert client.post("/v1/mask", content=photo, headers=jpeg(photo)).status_code == 200
    metrics = client.get("/metrics").text
    assert re.search(r'rmbg_requests_total\{route="/v1/cutout",status="422"\} [1-9]', metrics)
    assert re.search(r'rmbg_requests_total\{route="other",status="404"\} [1-9]', metrics)
    assert 'rmbg_queue_wait_seconds_bucket{le="+Inf"}' in metrics
    assert "rmbg_model_ready 1" in metrics


# -- security -----------------------------------------------------------------------------------
class _Images(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://example.invalid/x.jpg")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def test_token_cors_and_allowed_url_hosts(env, fake_model, library, photo) -> None:
    _Images.body = photo
    images = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    threading.Thread(target=images.serve_forever, daemon=True).start()
    env = {**env, "RMBG_TOKEN": "s3cret"}
    try:
        with serving(
            env, *fake_model, "--cors-origin", "https://app.example", "--allow-url-host",
            "127.0.0.1",
        ) as s, httpx.Client(base_url=s.url, timeout=30) as c:  # fmt: skip
            assert c.get("/health/live").status_code == 200
            assert c.get("/health/ready").status_code == 200
            for path in ("/v1/info", "/metrics", "/openapi.json", "/docs"):
                r = c.get(path)
                assert r.status_code == 401, path
                assert r.headers["www-authenticate"].startswith("Bearer")
            r = c.post("/v1/mask", content=photo, headers=jpeg(photo))
            assert r.status_code == 401
            wrong = {"authorization": "Bearer s3creT", **jpeg(photo)}
            assert c.post("/v1/mask", content=photo, headers=wrong).json()["detail"] == (
                "Wrong bearer token."
            )
            auth = {"authorization": "Bearer s3cret"}
            r = c.post("/v1/mask", content=photo, headers={**auth, **jpeg(photo)})
            assert r.status_code == 200
            assert c.get("/v1/info", headers=auth).json()["limits"]["token"] == "set"
            # CORS: a preflight needs no token; the allowed origin is echoed, others are not
            pre = c.options(
                "/v1/cutout",
                headers={"origin": "https://app.example", "access-control-request-method": "POST"},
            )
            assert pre.status_code == 200
            assert pre.headers["access-control-allow-origin"] == "https://app.example"
            r = c.get("/health/live", headers={"origin": "https://evil.example"})
            assert "access-control-allow-origin" not in r.headers
            # URL inputs from the allowed host only, redirects not followed
            url = f"http://127.0.0.1:{images.server_address[1]}"
            r = c.post("/v1/mask", json={"url": url + "/p.jpg"}, headers=auth)
            assert r.status_code == 200, r.text
            np.testing.assert_array_equal(decode(r.content), library.mask(photo, output="array"))
            r = c.get("/api/remove", params={"url": url + "/p.jpg"}, headers=auth)
            assert r.status_code == 200
            r = c.get("/api/remove", params={"url": url + "/redirect"}, headers=auth)
            assert r.status_code == 400
            r = c.post("/v1/mask", json={"url": "http://localhost/p.jpg"}, headers=auth)
            assert r.status_code == 422
            assert "allow-list" in r.json()["detail"]
    finally:
        images.shutdown()
        images.server_close()


# -- under load ---------------------------------------------------------------------------------
def test_full_queue_gives_503_and_every_200_is_a_correct_image(env, fake_model, library, photo):
    args = ("--workers", "1", "--max-queue", "1", "--backend-option", "delay=0.4")
    expected = library.cutout(photo, output="array")
    with serving(env, *fake_model, *args) as s, httpx.Client(base_url=s.url, timeout=60) as c:

        def post(_: int) -> httpx.Response:
            return c.post("/v1/cutout", content=photo, headers=jpeg(photo))

        with cf.ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(post, range(8)))
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) <= {200, 503}, statuses
        assert statuses.count(200) >= 2  # the worker and the queue place
        assert statuses.count(503) >= 1
        for r in responses:
            if r.status_code == 200:
                np.testing.assert_array_equal(decode(r.content), expected)
            else:
                assert r.headers["retry-after"] == "1"
                assert r.json()["error"] == "Busy"
        metrics = c.get("/metrics").text
        busy = int(re.search(r'rmbg_rejected_total\{reason="busy"\} (\d+)', metrics).group(1))
        assert busy == statuses.count(503)
        assert "rmbg_admitted 0" in metrics
        assert c.post("/v1/cutout", content=photo, headers=jpeg(photo)).status_code == 200


def test_a_client_that_leaves_gives_up_its_place(env, fake_model, photo) -> None:
    args = ("--workers", "1", "--backend-option", "delay=1.0")
    with serving(env, *fake_model, *args) as s, httpx.Client(base_url=s.url, timeout=60) as c:
        with cf.ThreadPoolExecutor(1) as pool:
            first = pool.submit(c.post, "/v1/mask", content=photo, headers=jpeg(photo))
            wait_for_metric(c, "rmbg_images_in_flight 1")
            host, port = s.url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port))) as sock:  # queued, then gone
                sock.sendall(
                    b"POST /v1/mask HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(photo), photo)
                )
                wait_for_metric(c, "rmbg_queue_depth 1")
            assert "rmbg_queue_depth 0" in wait_for_metric(c, 'status="499"')
            assert first.result(30).status_code == 200
        # the one that left was never computed: nothing is in flight once the first is answered
        assert "rmbg_images_in_flight 0" in c.get("/metrics").text
        assert c.post("/v1/mask", content=photo, headers=jpeg(photo)).status_code == 200


def test_deadline_gives_504_and_frees_the_slot(env, fake_model, photo) -> None:
    args = ("--workers", "1", "--max-queue", "4", "--timeout", "0.6", "--backend-option",
            "delay=1.0")  # fmt: skip
    with serving(env, *fake_model, *args) as s, httpx.Client(base_url=s.url, timeout=60) as c:
        started = time.monotonic()
        r = c.post("/v1/mask", content=photo, headers=jpeg(photo))
        assert r.status_code == 504
        assert r.json()["error"] == "Timeout"
        assert time.monotonic() - started < 5
        time.sleep(1.2)  # the computing thread finishes its image and gives the slot back
        metrics = c.get("/metrics").text
        assert "rmbg_images_in_flight 0" in metrics
        assert "rmbg_admitted 0" in metrics
        assert c.get("/health/ready").status_code == 200


def test_not_ready_until_the_model_is_loaded(env, fake_model, photo) -> None:
    # the startup inference (warmup) takes 3 s here: the server listens before it is done
    server = Server([*fake_model, "--backend-option", "delay=3"], env, ready=False)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            assert c.get("/health/live").status_code == 200
            r = c.get("/health/ready")
            assert r.status_code == 503
            assert r.json()["status"] == "loading"
            r = c.post("/v1/cutout", content=photo, headers=jpeg(photo))
            assert r.status_code == 503
            assert r.json()["error"] == "NotReady"
            assert int(r.headers["retry-after"]) >= 1
            assert "rmbg_model_ready 0" in c.get("/metrics").text
            server.wait_ready()
            assert "rmbg_model_ready 1" in c.get("/metrics").text
    finally:
        server.stop()


def test_sigterm_finishes_the_request_in_flight_and_exits_0(env, fake_model, library, photo):
    server = Server([*fake_model, "--backend-option", "delay=1.5"], env)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c, cf.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(c.post, "/v1/cutout", content=photo, headers=jpeg(photo))
            wait_for_metric(c, "rmbg_images_in_flight 1")
            server.proc.send_signal(signal.SIGTERM)
            r = pending.result(30)
            assert r.status_code == 200
            np.testing.assert_array_equal(decode(r.content), library.cutout(photo, output="array"))
        assert server.proc.wait(30) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/health/live", timeout=2)
    finally:
        server.stop()


# -- the real network -----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.realweights
@pytest.mark.timeout(600)
def test_standin_checkpoint_on_openvino(env, standin_dir, photo) -> None:
    from rmbg import BackgroundRemover

    library = BackgroundRemover(
        standin_dir, backend_options={"performance_hint": "THROUGHPUT"},
        cache_dir=env["RMBG_CACHE_DIR"],
    )  # fmt: skip
    expected = library.cutout(photo, output="array")
    with serving(env, "--model", str(standin_dir)) as s, httpx.Client(base_url=s.url) as c:
        info = c.get("/v1/info").json()
        assert info["backend"] == "openvino"
        assert info["workers"] == info["infer_requests"] + 2
        r = c.post("/api/remove", files={"file": ("p.jpg", photo, "image/jpeg")}, timeout=60)
        assert r.status_code == 200
        got = decode(r.content)
    # the same compiled IR and settings in both processes: equal to 1 level of alpha at most
    diff = np.abs(got[..., 3].astype(int) - expected[..., 3])
    assert diff.max() <= 1, diff.max()
    assert json.dumps(info)  # /v1/info is plain JSON
