"""What the fleet tests share: a small real wheel, an environment for the agent core of its own, and
an MQTT client that sees what agents publish."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def make_wheel(directory: Path, dist: str, version: str, module: str) -> tuple[Path, str]:
    """A pure-Python wheel of one module with `main()`; (its path, its sha256)."""
    directory.mkdir(parents=True, exist_ok=True)
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"def main():\n    return {module!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: lighthouse-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def core_environment(directory: Path) -> Path:
    """A venv whose packages are its own, on top of the project's (a .pth adds them): components the
    core installs land in it, not in the environment the tests run in. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    python = directory / "bin" / "python"
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    outer = sysconfig.get_paths()["purelib"]
    Path(own, "zz_project.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    return python


class AgentCore:
    """`lighthouse agent-core` as a process."""

    def __init__(
        self,
        python: Path,
        agent_id: str,
        secret: str,
        api_url: str,
        state_dir: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.agent_id = agent_id
        self.state_dir = state_dir
        self.log = state_dir.parent / f"{agent_id}.log"
        command = [str(python), "-m", "lighthouse_tools.agent_core", "--agent-id", agent_id]
        command += ["--state-dir", str(state_dir), "--api-url", api_url]
        environment = {**os.environ, "LIGHTHOUSE_AGENT_SECRET": secret, **(env or {})}
        state_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class Watcher:
    """An MQTT client on the fleet's topics (an admin's credentials); every message, in order."""

    def __init__(self, mqtt_url: str, username: str, password: str, topic_filter: str = "lighthouse/agents/#") -> None:
        host, _, port = mqtt_url.removeprefix("mqtt://").partition(":")
        self.messages: queue.Queue[tuple[str, Any, bool, float]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        subscribed: queue.Queue[bool] = queue.Queue()
        self.client.on_connect = lambda c, u, f, reason, p: (c.subscribe(topic_filter, qos=1), None)[1]
        self.client.on_subscribe = lambda *args: subscribed.put(True)
        self.client.connect(host, int(port))
        self.client.loop_start()
        subscribed.get(timeout=10)

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(message.payload)
        except ValueError:
            payload = message.payload
        self.messages.put((message.topic, payload, bool(message.retain), time.monotonic()))

    def wait_for(self, topic: str, timeout: float = 20.0, where: Any = None) -> tuple[str, Any, bool, float]:
        """The next message on `topic` (matching `where(payload)`); others are skipped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if mqtt.topic_matches_sub(topic, message[0]) and (where is None or where(message[1])):
                return message
        raise AssertionError(f"no message on {topic} within {timeout} s")

    def drain(self) -> list[tuple[str, Any, bool, float]]:
        drained = []
        while not self.messages.empty():
            drained.append(self.messages.get())
        return drained

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
