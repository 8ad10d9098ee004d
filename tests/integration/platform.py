"""`lighthouse up` as a process the durability tests start, kill and start again on one data directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from tests.helpers import signed_session_body

LIGHTHOUSE = str(Path(sys.executable).parent / "lighthouse")
READY_TIMEOUT = 60


@dataclass
class UpProcess:
    workdir: Path
    data_dir: Path
    workers: int = 1
    process: subprocess.Popen[str] | None = None
    api_url: str = ""
    aws_endpoint_url: str = ""
    output: list[str] = field(default_factory=list)

    @property
    def state_file(self) -> Path:
        return self.workdir / ".lighthouse" / "local.json"

    def start(self, *extra: str, expect_ready: bool = True) -> subprocess.Popen[str]:
        self.output = []
        command = [
            LIGHTHOUSE,
            "--state-file",
            str(self.state_file),
            "up",
            "--api-port",
            "0",
            "--aws-port",
            "0",
            "--mqtt-port",
            "0",
        ]
        command += ["--data-dir", str(self.data_dir), "--workers", str(self.workers), "--no-schedules", *extra]
        environment = {
            **os.environ,
            "LIGHTHOUSE_REQUESTS_PER_MINUTE": "100000000",
            "LIGHTHOUSE_REQUEST_BURST": "100000",
            "LIGHTHOUSE_ELICITATION_CREATES_PER_MINUTE": "1000000",
            "LIGHTHOUSE_ELICITATION_RESPONSES_PER_MINUTE": "1000000",
            "LIGHTHOUSE_ELICITATION_BURST": "1000",
            "LIGHTHOUSE_LOG_LEVEL": "WARNING",
        }
        process = subprocess.Popen(
            command,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
        )
        ready = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                self.output.append(line)
                if line.startswith("Press Ctrl+C"):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not expect_ready:
            process.wait(READY_TIMEOUT)
            time.sleep(0.2)  # let the reader take the last lines
            return process
        if not ready.wait(READY_TIMEOUT):
            process.kill()
            raise AssertionError("lighthouse up did not become ready:\n" + "".join(self.output))
        text = "".join(self.output)
        api = re.search(r"API:\s+(http://\S+)", text)
        aws = re.search(r"AWS endpoint:\s+(http://\S+)", text)
        assert api, text
        assert aws, text
        self.process, self.api_url, self.aws_endpoint_url = process, api.group(1), aws.group(1)
        return process

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.process = None

    def interrupt(self) -> int:
        """Ctrl+C: a clean shutdown."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(60)
        self.process = None
        return code

    def stop_quietly(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self.process = None

    def environment(self) -> dict[str, str]:
        return dict(json.loads(self.state_file.read_text())["environment"])

    def aws(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.aws_endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="anything",
            aws_secret_access_key="anything",
        )

    def operator(self) -> Session:
        credential = json.loads((self.workdir / ".lighthouse" / "operator.json").read_text())
        return Session.sign_in(self, credential["agent_id"], credential["secret"])


class Session:
    """An agent's signed-in HTTP session; the platform's URL is looked up per call (it changes on restart)."""

    def __init__(self, up: UpProcess, agent_id: str, secret: str, token: str) -> None:
        self.up, self.agent_id, self.secret, self.token = up, agent_id, secret, token
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def sign_in(cls, up: UpProcess, agent_id: str, secret: str) -> Session:
        response = requests.post(f"{up.api_url}/sessions", json=signed_session_body(agent_id, secret), timeout=30)
        assert response.status_code == 201, response.text
        return cls(up, agent_id, secret, response.json()["token"])

    def call(self, method: str, path: str, body: Any = None, timeout: float = 30) -> requests.Response:
        return self.http.request(method, f"{self.up.api_url}{path}", json=body, timeout=timeout)


def eventually(check: Any, timeout: float = 30.0, interval: float = 0.2, explain: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    detail = explain() if explain is not None else last
    raise AssertionError(f"condition not met within {timeout} s; last result: {detail!r}")
