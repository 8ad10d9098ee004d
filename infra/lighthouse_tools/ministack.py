"""MiniStack, a Docker-free AWS emulator that speaks LocalStack's endpoint conventions.

It lives in a tool environment of its own (`lighthouse_tools.tools.MINISTACK`, pinned by
`localstack/tools/ministack.txt`); `running()` starts a server on a free port, with its state in a
scratch directory, and stops it afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from lighthouse_tools.tools import MINISTACK

READY_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(log: Path | None = None) -> Iterator[str]:
    """A MiniStack server for the duration; yields its endpoint URL."""
    executable = MINISTACK.executable()
    port = free_port()
    scratch = tempfile.TemporaryDirectory(prefix="ministack-")
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "GATEWAY_PORT": str(port),
        "MINISTACK_HOST": "127.0.0.1",
        "BIND_HOST": "127.0.0.1",
        "STATE_DIR": scratch.name,
        "TMPDIR": scratch.name,
    }
    output = log.open("w") if log else subprocess.DEVNULL
    process = subprocess.Popen(  # noqa: S603
        [str(executable)], env=environment, stdout=output, stderr=subprocess.STDOUT, cwd=scratch.name
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                if requests.get(f"{endpoint}/_localstack/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"MiniStack did not start on {endpoint}")
            time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if log and not isinstance(output, int):
            output.close()
        scratch.cleanup()
