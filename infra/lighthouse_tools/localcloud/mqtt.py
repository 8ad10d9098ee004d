"""The local MQTT side of the fleet: a mosquitto broker (Debian's `mosquitto`, dynamic-security
plugin, 127.0.0.1 only) and a runner for the template's IoT topic rules, so agents' messages reach
the same SQS queue and the same ingest function as on AWS.

Why mosquitto and not a broker in Python: see DESIGN.md (amqtt replays retained messages past ACLs,
never enforces keepalive, lets a wrong password drop a real session, ...).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import queue
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from lighthouse.fleet.broker import ADMIN_ROLE, PLATFORM_USERNAME, admin_role_acls

logger = logging.getLogger("lighthouse.localcloud.mqtt")
DYNSEC_PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)
INSTALL_HINT = (
    "install Debian's mosquitto and mosquitto-clients (`make mqtt`, or apt-get install -y mosquitto mosquitto-clients)"
)


class BrokerError(RuntimeError):
    pass


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it dies (even by kill -9),
    so a `lighthouse up` that is killed leaves no broker behind holding its port."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _fingerprint(password: str) -> str:
    import hashlib

    return hashlib.sha256(f"lighthouse-platform\x00{password}".encode()).hexdigest()


def _plugin() -> str:
    for path in DYNSEC_PLUGIN_PATHS:
        if Path(path).exists():
            return path
    raise BrokerError(f"mosquitto's dynamic-security plugin was not found; {INSTALL_HINT}")


class LocalBroker:
    """mosquitto on a free port; `platform_password` is the platform account's (from the master secret)."""

    def __init__(
        self, platform_password: str, host: str = "127.0.0.1", port: int = 0, directory: Path | None = None
    ) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._password = platform_password
        self._owned = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="lighthouse-mqtt-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._config = self.directory / "mosquitto.conf"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, platform_password: str | None = None) -> LocalBroker:
        if platform_password is not None:
            self._password = platform_password
        for tool in ("mosquitto", "mosquitto_ctrl"):
            if shutil.which(tool) is None:
                raise BrokerError(f"{tool} is not installed; {INSTALL_HINT}")
        self.directory.mkdir(parents=True, exist_ok=True)
        dynsec = self.directory / "dynamic-security.json"
        marker = self.directory / "platform-account"
        # A data directory keeps its accounts (agents reconnect after a restart without asking the
        # API); a new platform password (a new master secret) starts them afresh.
        kept = (
            dynsec.exists() and marker.exists() and marker.read_text(errors="replace") == _fingerprint(self._password)
        )
        if not kept:
            self._initialise_accounts(dynsec)
            marker.write_text(_fingerprint(self._password))
        config = self.directory / "mosquitto.conf"
        config.write_text(
            "\n".join(
                [
                    f"listener {self.port} {self.host}",
                    "allow_anonymous false",
                    # Started by root, mosquitto switches to the `mosquitto` user, who cannot read
                    # this private directory: stay whoever started it.
                    f"user {getpass.getuser()}",
                    f"plugin {_plugin()}",
                    f"plugin_opt_config_file {dynsec}",
                    "persistence true",
                    "autosave_interval 5",
                    f"persistence_location {self.directory}/",
                    "max_queued_messages 1000",
                    "log_type error",
                    "log_type warning",
                    # A file, not a pipe: a pipe nobody reads fills up and then blocks the broker.
                    f"log_dest file {self.directory / 'mosquitto.log'}",
                    "",
                ]
            )
        )
        self._config = config
        self._launch()
        self._watchdog = threading.Thread(target=self._relaunch_if_it_dies, name="mosquitto-watchdog", daemon=True)
        self._watchdog.start()
        return self

    def _launch(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            ["mosquitto", "-c", str(self._config)],  # noqa: S607
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # only a prctl: safe between fork and exec
        )
        self._wait_until_listening()

    def _relaunch_if_it_dies(self) -> None:
        """A broker that crashes comes back on the same port with the accounts it saved (dynamic
        security writes its file on every change; retained messages and sessions are persisted)."""
        while not self._stopping.is_set():
            process = self.process
            if process is None:
                return
            code = process.wait()
            if self._stopping.is_set():
                return
            self.restarts += 1
            logger.error("mosquitto exited with %s; starting it again (restart %d)", code, self.restarts)
            time.sleep(min(5.0, 0.1 * self.restarts))
            try:
                self._launch()
            except BrokerError:
                logger.exception("mosquitto could not be started again")
                return

    def _wait_until_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = self.directory / "mosquitto.log"
                error = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise BrokerError(f"mosquitto exited at start: {error.strip()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port} within {timeout} s")

    def _initialise_accounts(self, dynsec: Path) -> None:
        dynsec.unlink(missing_ok=True)
        init = subprocess.run(  # noqa: S603
            ["mosquitto_ctrl", "dynsec", "init", str(dynsec), PLATFORM_USERNAME, self._password],  # noqa: S607
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if init.returncode != 0:
            raise BrokerError(f"mosquitto_ctrl dynsec init failed: {init.stderr.strip() or init.stdout.strip()}")
        self._add_fleet_admin_role(dynsec)

    @staticmethod
    def _add_fleet_admin_role(dynsec: Path) -> None:
        """The platform account administers accounts (dynsec's `admin` role, from init) and the fleet
        topics. Written into the file before mosquitto starts: granting a role to a connected
        client makes dynamic security disconnect it, before it could read the answer."""
        document = json.loads(dynsec.read_text())
        document["roles"].append({"rolename": ADMIN_ROLE, "acls": admin_role_acls()})
        for client in document["clients"]:
            if client["username"] == PLATFORM_USERNAME:
                client["roles"].append({"rolename": ADMIN_ROLE})
        dynsec.write_text(json.dumps(document))

    def stop(self) -> None:
        self._stopping.set()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)


# ---- topic rules --------------------------------------------------------------------------------

_SQL = re.compile(r"^SELECT\s+(?P<fields>.+?)\s+FROM\s+'(?P<filter>[^']+)'\s*$", re.IGNORECASE)
_FIELD = re.compile(
    r"^(?:\*|(?P<function>topic|timestamp)\(\)\s+AS\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*))$", re.IGNORECASE
)


@dataclass(frozen=True)
class TopicRule:
    """The part of IoT SQL the template's rules use: `SELECT *, topic() AS a, timestamp() AS b FROM 'filter'`."""

    name: str
    topic_filter: str
    star: bool
    computed: tuple[tuple[str, str], ...]  # (function, name)
    queue_url: str

    @classmethod
    def parse(cls, name: str, payload: dict[str, Any]) -> TopicRule:
        match = _SQL.match(payload["Sql"].strip())
        if not match:
            raise BrokerError(
                f"{name}: the local rule runner reads only SELECT ... FROM 'filter', got {payload['Sql']!r}"  # noqa: S608
            )
        star, computed = False, []
        for field_text in (f.strip() for f in match["fields"].split(",")):
            field_match = _FIELD.match(field_text)
            if not field_match:
                raise BrokerError(f"{name}: the local rule runner does not evaluate {field_text!r}")
            if field_match["function"]:
                computed.append((field_match["function"].lower(), field_match["name"]))
            else:
                star = True
        queues = [action["Sqs"]["QueueUrl"] for action in payload.get("Actions", []) if "Sqs" in action]
        if len(queues) != 1:
            raise BrokerError(f"{name}: the local rule runner needs exactly one Sqs action")
        return cls(name, match["filter"], star, tuple(computed), queues[0])

    def select(self, topic: str, payload: dict[str, Any], received_ms: int) -> dict[str, Any]:
        selected = dict(payload) if self.star else {}
        for function, name in self.computed:
            selected[name] = topic if function == "topic" else received_ms
        return selected


class TopicRuleRunner:
    """Subscribes as the platform to every rule's filter and sends each message's selection to the
    rule's queue. Retained snapshots arrive on subscribe too: the ingest keeps only what is news."""

    def __init__(self, rules: list[TopicRule], broker_url: str, platform_password: str, sqs: Any) -> None:
        self.rules = rules
        self._sqs = sqs
        host, _, port = broker_url.removeprefix("mqtt://").partition(":")
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="lighthouse-topic-rules", protocol=mqtt.MQTTv5
        )
        self._client.username_pw_set(PLATFORM_USERNAME, platform_password)
        self._client.on_connect = self._on_connect
        self._client.on_message = lambda client, userdata, message: self._pending.put(message)
        self._address = (host, int(port))
        self._pending: queue.Queue[mqtt.MQTTMessage | None] = queue.Queue()
        self._sender = threading.Thread(target=self._send_all, name="topic-rules", daemon=True)
        self.forwarded = 0
        self.dropped = 0

    def start(self) -> TopicRuleRunner:
        self._sender.start()
        self._client.connect(*self._address, keepalive=30)
        self._client.loop_start()
        return self

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            logger.error("the topic rule runner could not connect: %s", reason)
            return
        client.subscribe([(rule.topic_filter, 1) for rule in self.rules])

    def _send_all(self) -> None:
        """Messages to their queues, up to ten per SendMessageBatch, as they come."""
        while True:
            first = self._pending.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < 64:
                try:
                    more = self._pending.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._pending.put(None)
                    break
                batch.append(more)
            try:
                self._forward(batch)
            except Exception:  # the runner must outlive a batch the queue refused
                logger.exception("could not forward %d messages", len(batch))

    def _forward(self, messages: list[mqtt.MQTTMessage]) -> None:
        received_ms = int(time.time() * 1000)
        by_queue: dict[str, list[str]] = {}
        for message in messages:
            try:
                payload = json.loads(message.payload)
            except (UnicodeDecodeError, ValueError):
                payload = None
            if not isinstance(payload, dict):
                # IoT Core's `SELECT *` needs a JSON object too; such a message reaches no queue.
                self.dropped += 1
                logger.warning("dropped a message on %s: its payload is not a JSON object", message.topic)
                continue
            for rule in self.rules:
                if mqtt.topic_matches_sub(rule.topic_filter, message.topic):
                    by_queue.setdefault(rule.queue_url, []).append(
                        json.dumps(rule.select(message.topic, payload, received_ms))
                    )
        for queue_url, bodies in by_queue.items():
            for start in range(0, len(bodies), 10):
                entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
                sent = self._sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
                self.forwarded += len(sent.get("Successful", []))
                for failed in sent.get("Failed", []):
                    logger.error("the queue refused a forwarded message: %s", failed.get("Message"))

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self._pending.put(None)
        self._sender.join(timeout=5)
