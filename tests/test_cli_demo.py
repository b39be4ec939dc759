"""``rmbg demo``: the subcommand serves the browser demo on 127.0.0.1 and stops cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request

from .test_cli import FAKE_CLI, env, fake  # noqa: F401  (fixtures)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses listening on ``port`` (Linux: /proc/net/tcp, state 0A)."""
    found = set()
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_demo_serves_on_localhost_until_interrupted(tmp_path, env, fake):  # noqa: F811
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_CLI), "demo", "--port", str(port), *fake],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                    body = page.read().decode()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "the demo did not start in 120 s"
                time.sleep(0.5)
        assert "rmbg" in body
        assert _listening_addresses(port) == {"127.0.0.1"}  # this machine only, by default
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) in (0, 130)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
