"""`lighthouse agent-core --agent-id ID --state-dir DIR`: sign in with the agent's secret, get MQTT
credentials from the API (the secret never travels over MQTT), then serve the contract until stopped.

A result that says `restart_required` ends in a re-exec of this same command once the result's
PUBACK is in; the new process comes back with fresh snapshots.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import platform
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lighthouse.logs import RedactingStdFormatter
from lighthouse_tools.agent_core.client import AgentConnection, Broker, PahoPublisher
from lighthouse_tools.agent_core.collect import Collector
from lighthouse_tools.agent_core.components import Components
from lighthouse_tools.agent_core.config_store import ConfigStore
from lighthouse_tools.agent_core.core import Core, CoreContext
from lighthouse_tools.agent_core.results import ResultStore
from lighthouse_tools.agent_core.snapshots import Identity, Runtime
from lighthouse_tools.client import ApiError, LighthouseClient

logger = logging.getLogger("lighthouse.agent_core")
RENEW_AT_FRACTION = 0.8  # of the credential's lifetime
CHECK_SECONDS = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent-id", required=True)
    parser.add_argument("--state-dir", required=True, type=Path, help="config, components and results live here")
    parser.add_argument("--api-url", help="default: the local state file's")
    parser.add_argument("--mqtt-url", help="default: the one POST /fleet/mqtt-credentials returns")
    parser.add_argument("--state-file", type=Path, default=Path(".lighthouse/local.json"))
    parser.add_argument(
        "--docker-socket", type=Path, help="the Docker Engine API socket (default: $LIGHTHOUSE_DOCKER_SOCKET "
        "or /var/run/docker.sock); runs read containers and their logs through it",
    )  # fmt: skip


def core_version() -> str:
    try:
        return importlib.metadata.version("lighthouse")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class Credentials:
    def __init__(self, api: LighthouseClient) -> None:
        self._api = api
        self.current: dict[str, Any] = {}
        self.fetched_at = 0.0

    def fetch(self) -> dict[str, Any]:
        self.current = self._api.request("POST", "/fleet/mqtt-credentials", {})
        self.fetched_at = time.time()
        return self.current

    def due(self) -> bool:
        lifetime = float(self.current.get("expires_at", 0)) - self.fetched_at
        return time.time() >= self.fetched_at + lifetime * RENEW_AT_FRACTION


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from lighthouse_tools.admin import api_url_of

    secret = os.environ.get("LIGHTHOUSE_AGENT_SECRET", "")
    api_url = api_url_of(args)
    if not secret or not api_url:
        print(
            "lighthouse agent-core: set LIGHTHOUSE_AGENT_SECRET and pass --api-url (or run `lighthouse up`)",
            file=sys.stderr,
        )
        return 2
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    credentials = Credentials(LighthouseClient(api_url, args.agent_id, secret))
    try:
        granted = credentials.fetch()
    except (ApiError, OSError) as error:
        print(f"lighthouse agent-core: could not get MQTT credentials: {error}", file=sys.stderr)
        return 1
    broker = Broker.parse(args.mqtt_url or granted["mqtt_url"])
    config = ConfigStore(state_dir / "config.json")
    logging.getLogger("lighthouse").setLevel(config.get()["log_level"])
    core = Core()
    connection = AgentConnection(core, args.agent_id, broker, granted["username"], granted["password"])
    restart = threading.Event()
    # The context exists before the connection does: no command can arrive to a core without one.
    core.set_context(
        CoreContext(
            identity=Identity(
                args.agent_id, core_version(), platform.platform(), platform.python_version(), socket.gethostname()
            ),
            runtime=Runtime(started_at=time.time()),
            config=config,
            components=Components(state_dir),
            results=ResultStore(state_dir / "results"),
            publisher=PahoPublisher(connection.client),
            on_heartbeat_change=connection.set_heartbeat_interval,
            on_restart=restart.set,
            collector=Collector.from_environment(args.docker_socket),
        )
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    connection.start(int(config.get()["heartbeat_s"]))
    print(f"agent-core {args.agent_id} connecting to {broker.host}:{broker.port}", flush=True)
    while not stop.is_set() and not restart.is_set():
        stop.wait(CHECK_SECONDS)
        if connection.refused or credentials.due():
            _renew(credentials, connection)
    connection.stop(announce_offline=not restart.is_set())
    if restart.is_set():
        logger.info("restarting: a result asked for it and reached the broker")
        os.execv(sys.executable, [sys.executable, "-m", "lighthouse_tools.agent_core", *argv])  # noqa: S606
    return 0


def _renew(credentials: Credentials, connection: AgentConnection) -> None:
    try:
        granted = credentials.fetch()
    except (ApiError, OSError) as error:
        logger.warning("could not renew the MQTT credentials: %s", error)
        return
    connection.client.username_pw_set(granted["username"], granted["password"])
    connection.refused = None


def main(argv: list[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="lighthouse agent-core")
    add_arguments(parser)
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingStdFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    return run(parser.parse_args(arguments), arguments)
