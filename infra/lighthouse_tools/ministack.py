"""MiniStack, a Docker-free AWS emulator, in a tool environment of its own.

It pins a botocore of its own, so it lives in `.lighthouse/tools/ministack`, apart from the
project's environment; the first use installs it there (pinned). `running()` starts a server on a
free port and stops it afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from lighthouse_tools.template import PROJECT_ROOT

VERSION = "1.5.33"
TOOL_DIR = PROJECT_ROOT / ".lighthouse" / "tools" / "ministack"
READY_TIMEOUT = 60


def ensure_installed(tool_dir: Path = TOOL_DIR) -> Path:
    """The `ministack` executable, installing the pinned version into its own venv if needed."""
    executable = tool_dir / "bin" / "ministack"
    stamp = tool_dir / f".installed-{VERSION}"
    if executable.exists() and stamp.exists():
        return executable
    subprocess.run([sys.executable, "-m", "venv", str(tool_dir)], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [str(tool_dir / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", f"ministack=={VERSION}"],
        check=True,
    )
    stamp.write_text(VERSION)
    return executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(log: Path | None = None) -> Iterator[str]:
    """A MiniStack server for the duration; yields its endpoint URL."""
    executable = ensure_installed()
    port = free_port()
    environment = {**os.environ, "GATEWAY_PORT": str(port), "MINISTACK_HOST": "127.0.0.1"}
    output = log.open("w") if log else subprocess.DEVNULL
    process = subprocess.Popen(  # noqa: S603
        [str(executable)], env=environment, stdout=output, stderr=subprocess.STDOUT, cwd=str(TOOL_DIR)
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
