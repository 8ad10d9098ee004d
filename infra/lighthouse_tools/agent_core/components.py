"""Components: wheels installed into the core's own environment, recorded with their dist name.

pip does the installing (`python -m pip` of the interpreter running the core, so the wheel lands in
the core's own environment); this module fetches the wheel, refuses it unless its sha256 matches,
and keeps the registry that uninstall needs (strict: no recorded dist name, no uninstall).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import requests

from lighthouse.fleet.contract import Install, Uninstall
from lighthouse_tools.agent_core.files import read_json, write_json_atomically

MAX_WHEEL_BYTES = 64 * 1024 * 1024
PIP_TIMEOUT_SECONDS = 300
_WHEEL_NAME = re.compile(r"^(?P<dist>[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?)-(?P<version>[^-]+)(-[^-]+){3,4}\.whl$")


class ComponentError(RuntimeError):
    pass


def normalize(name: str) -> str:
    """PEP 503: runs of -, _ and . become one -, lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_name_of_wheel(filename: str) -> str:
    """`lighthouse_agent_cpu-1.0.0-py3-none-any.whl` -> `lighthouse-agent-cpu`."""
    match = _WHEEL_NAME.match(filename)
    if not match:
        raise ComponentError(f"{filename!r} is not a wheel file name (name-version-python-abi-platform.whl)")
    return normalize(match["dist"])


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Outcome:
    fields: dict[str, Any]
    restart_required: bool


class Components:
    def __init__(self, state_dir: Path, python: str = sys.executable) -> None:
        self._registry_path = state_dir / "components.json"
        self._downloads = state_dir / "downloads"
        self._python = python
        self._lock = threading.Lock()

    def installed(self) -> dict[str, dict[str, Any]]:
        return dict(read_json(self._registry_path, {}))

    # ---- install ----------------------------------------------------------------------------

    def install(self, command: Install) -> Outcome:
        with self._lock:
            registry = self.installed()
            current = registry.get(command.component_id)
            if current and current["version"] == command.version and current["sha256"] == command.sha256:
                return Outcome({"component_id": command.component_id, "version": command.version, "noop": True}, False)
            wheel = self._fetch(command.source, command.sha256)
            dist_name = dist_name_of_wheel(wheel.name)
            self._pip("install", "--no-deps", "--no-index", "--force-reinstall", str(wheel))
            registry[command.component_id] = {
                "component_id": command.component_id,
                "version": command.version,
                "dist_name": dist_name,
                "entrypoint": command.entrypoint,
                "sha256": command.sha256,
                "installed_at": time.time(),
            }
            write_json_atomically(self._registry_path, registry)
            wheel.unlink(missing_ok=True)
            return Outcome(
                {"component_id": command.component_id, "version": command.version, "dist_name": dist_name}, True
            )

    def _fetch(self, source: str, sha256: str) -> Path:
        """The wheel at `source` (a path, file://, https://, or http:// to this host) with that sha256."""
        data, name = self._read_source(source)
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise ComponentError(f"sha256 mismatch: the source has {digest}, the command says {sha256}")
        dist_name_of_wheel(name)  # refuse before writing anything
        self._downloads.mkdir(parents=True, exist_ok=True)
        target = self._downloads / name
        target.write_bytes(data)
        return target

    def _read_source(self, source: str) -> tuple[bytes, str]:
        parsed = urlparse(source)
        if parsed.scheme in ("", "file"):
            path = Path(unquote(parsed.path) if parsed.scheme else source)
            if not path.is_absolute() or not path.is_file():
                raise ComponentError(f"source {source!r} is not an absolute path to a file")
            if path.stat().st_size > MAX_WHEEL_BYTES:
                raise ComponentError(f"source is larger than {MAX_WHEEL_BYTES} bytes")
            return path.read_bytes(), path.name
        if parsed.scheme == "https" or (parsed.scheme == "http" and _is_loopback(parsed.hostname or "")):
            return self._download(source), Path(unquote(parsed.path)).name
        raise ComponentError("source must be an https:// URL, a presigned URL of the platform, or a local path")

    @staticmethod
    def _download(url: str) -> bytes:
        try:
            with requests.get(url, stream=True, timeout=60) as response:
                response.raise_for_status()
                chunks, size = [], 0
                for chunk in response.iter_content(1 << 16):
                    size += len(chunk)
                    if size > MAX_WHEEL_BYTES:
                        raise ComponentError(f"source is larger than {MAX_WHEEL_BYTES} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except requests.RequestException as error:
            raise ComponentError(f"could not download the source: {error}") from error

    # ---- uninstall --------------------------------------------------------------------------

    def uninstall(self, command: Uninstall) -> Outcome:
        with self._lock:
            registry = self.installed()
            current = registry.get(command.component_id)
            if current is None:
                return Outcome({"component_id": command.component_id, "noop": True}, False)
            dist_name = current.get("dist_name")
            if not dist_name:
                raise ComponentError(f"component {command.component_id!r} has no recorded dist_name; not guessing one")
            self._pip("uninstall", "--yes", dist_name)
            del registry[command.component_id]
            write_json_atomically(self._registry_path, registry)
            return Outcome({"component_id": command.component_id, "dist_name": dist_name}, True)

    def _pip(self, *arguments: str) -> None:
        command = [self._python, "-m", "pip", *arguments, "--disable-pip-version-check", "-q"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False)  # noqa: S603
        except subprocess.TimeoutExpired as error:
            raise ComponentError(f"pip {arguments[0]} took longer than {PIP_TIMEOUT_SECONDS} s") from error
        if done.returncode != 0:
            raise ComponentError(f"pip {arguments[0]} failed: {(done.stderr or done.stdout).strip()[-500:]}")
