"""What a run's job collects on this host: containers and their logs through the Docker Engine API
(its unix socket, with the `docker` SDK), GPUs through `nvidia-smi`; uploaded to the presigned URL
the command carries, never sent over MQTT."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from lighthouse.fleet import contract

logger = logging.getLogger("lighthouse.agent_core")
DOCKER_API_VERSION = "1.43"
MAX_CONTAINERS = 100  # a retained snapshot stays under the broker's payload limit
MAX_LABEL_CHARS = 200
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
GPU_QUERY = "index,name,utilization.gpu,memory.used,memory.total,temperature.gpu"
GPU_FIELDS = ("index", "name", "utilization_percent", "memory_used_mib", "memory_total_mib", "temperature_c")


class CollectError(Exception):
    pass


@dataclass
class Collector:
    docker_socket: Path
    nvidia_smi: str | None = None
    timeout_seconds: float = 20.0

    @classmethod
    def from_environment(cls, docker_socket: Path | None = None) -> Collector:
        socket = docker_socket or Path(os.environ.get("LIGHTHOUSE_DOCKER_SOCKET", "/var/run/docker.sock"))
        return cls(socket, os.environ.get("LIGHTHOUSE_NVIDIA_SMI") or shutil.which("nvidia-smi"))

    # ---- Docker ---------------------------------------------------------------------------------

    def _docker(self) -> Any:
        import docker

        if not self.docker_socket.exists():
            raise CollectError(f"no Docker Engine socket at {self.docker_socket}")
        return docker.DockerClient(
            base_url=f"unix://{self.docker_socket}", version=DOCKER_API_VERSION, timeout=int(self.timeout_seconds)
        )

    def inventory(self) -> dict[str, Any]:
        """The `core/inventory` snapshot: the host's containers, or why there are none to show."""
        base: dict[str, Any] = {"schema": contract.SCHEMA}
        if not self.docker_socket.exists():
            return {**base, "docker": "absent", "containers": []}
        try:
            client = self._docker()
            summaries = client.api.containers(all=True)
        except Exception as error:  # the SDK raises requests', docker's and socket errors
            return {**base, "docker": "error", "error": f"{type(error).__name__}: {str(error)[:300]}", "containers": []}
        containers = [_container(summary) for summary in summaries[:MAX_CONTAINERS]]
        return {**base, "docker": "available", "containers": containers, "truncated": len(summaries) > MAX_CONTAINERS}

    def logs(self, container_id: str, since: float | None, max_lines: int) -> bytes:
        try:
            client = self._docker()
            raw = client.api.logs(
                container_id, stdout=True, stderr=True, timestamps=True, tail=max_lines,
                since=int(since) if since else None,
            )  # fmt: skip
        except CollectError:
            raise
        except Exception as error:
            raise CollectError(f"could not read the logs of {container_id}: {type(error).__name__}: {error}") from error
        return bytes(raw)

    # ---- GPUs -----------------------------------------------------------------------------------

    def gpus(self) -> bytes:
        if not self.nvidia_smi:
            return json.dumps({"gpus": [], "source": "none", "error": "nvidia-smi not found on this host"}).encode()
        try:
            completed = subprocess.run(  # noqa: S603 - a fixed program path and fixed arguments
                [self.nvidia_smi, f"--query-gpu={GPU_QUERY}", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=self.timeout_seconds, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as error:
            raise CollectError(f"nvidia-smi failed: {error}") from error
        if completed.returncode != 0:
            raise CollectError(f"nvidia-smi exited {completed.returncode}: {completed.stderr.strip()[:300]}")
        gpus = []
        for line in completed.stdout.splitlines():
            values = [value.strip() for value in line.split(",")]
            if len(values) != len(GPU_FIELDS):
                continue
            row: dict[str, Any] = dict(zip(GPU_FIELDS, values, strict=True))
            for name in GPU_FIELDS:
                if name != "name":
                    row[name] = _number(row[name])
            gpus.append(row)
        return json.dumps({"gpus": gpus, "source": "nvidia-smi"}).encode()

    # ---- the command ----------------------------------------------------------------------------

    def collect(self, command: contract.Collect) -> dict[str, Any]:
        """Collect, upload, and say what was uploaded (the result's fields besides ok)."""
        if command.kind == "logs":
            if not command.container_id:
                raise CollectError("a logs collection names its container_id")
            body = self.logs(command.container_id, command.since, command.max_lines)
        elif command.kind == "gpu":
            body = self.gpus()
        else:
            body = json.dumps(self.inventory()).encode()
        if len(body) > MAX_UPLOAD_BYTES:
            body = body[-MAX_UPLOAD_BYTES:]
        try:
            response = requests.put(command.upload_url, data=body, timeout=self.timeout_seconds)
        except requests.RequestException as error:
            raise CollectError(f"the upload failed: {type(error).__name__}") from error
        if response.status_code >= 300:
            raise CollectError(f"the upload was refused: HTTP {response.status_code}")
        fields: dict[str, Any] = {"kind": command.kind, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        if command.kind == "logs":
            fields["lines"] = body.count(b"\n")
            fields["container_id"] = command.container_id
        return fields


def _container(summary: dict[str, Any]) -> dict[str, Any]:
    names = summary.get("Names") or []
    labels = {str(k): str(v)[:MAX_LABEL_CHARS] for k, v in (summary.get("Labels") or {}).items()}
    ports = [
        {k: port[k] for k in ("PrivatePort", "PublicPort", "Type", "IP") if k in port}
        for port in summary.get("Ports") or []
    ]
    return {
        "id": str(summary.get("Id", ""))[:12],
        "full_id": str(summary.get("Id", "")),
        "name": (names[0] if names else "").lstrip("/"),
        "image": str(summary.get("Image", "")),
        "state": str(summary.get("State", "")),
        "status": str(summary.get("Status", "")),
        "labels": labels,
        "ports": ports,
    }


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text
