"""The core's MQTT connection (paho): will before connect, snapshots on every (re)connect, command
subscriptions, a heartbeat whose interval follows `cfg/set` at once, and commands run off the
network thread (a restart waits for its result's PUBACK, which that thread has to deliver)."""

from __future__ import annotations

import json
import logging
import queue
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from lighthouse.fleet import contract
from lighthouse_tools.agent_core import snapshots
from lighthouse_tools.agent_core.core import Core

logger = logging.getLogger("lighthouse.agent_core")
QOS = 1


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> Broker:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise ValueError(f"expected mqtt://host:port or mqtts://host:port, got {url!r}")
        tls = parsed.scheme == "mqtts"
        return cls(parsed.hostname, parsed.port or (8883 if tls else 1883), tls)


class PahoPublisher:
    """`Publisher` over a paho client: JSON payloads, QoS 1."""

    def __init__(self, client: mqtt.Client) -> None:
        self._client = client

    def publish(self, topic: str, payload: dict[str, Any], retain: bool) -> mqtt.MQTTMessageInfo:
        return self._client.publish(topic, json.dumps(payload, sort_keys=True), qos=QOS, retain=retain)


class AgentConnection:
    def __init__(self, core: Core, agent_id: str, broker: Broker, username: str, password: str) -> None:
        self.core = core
        self.agent_id = agent_id
        self._broker = broker
        # A persistent session: commands sent while the core is away wait at the broker (until
        # their message expiry, the command's ttl) and arrive when it reconnects.
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=agent_id, protocol=mqtt.MQTTv311, clean_session=False
        )
        self.client.username_pw_set(username, password)
        # A command is acknowledged once it has run (its result stored), not when it arrives: one
        # that arrives while the core is restarting is delivered again to the next process.
        self.client.manual_ack_set(True)
        if broker.tls:
            context = ssl.create_default_context()
            if broker.port == 443:
                context.set_alpn_protocols(["mqtt"])  # IoT Core's MQTT (with a custom authorizer) on 443
            self.client.tls_set_context(context)
        # The will is part of CONNECT: set before connecting, so a dead connection reads offline.
        will = json.dumps(snapshots.offline_will(agent_id), sort_keys=True)
        self.client.will_set(contract.topic(agent_id, contract.STATUS), will, qos=QOS, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.connected = threading.Event()
        self.refused: str | None = None
        self._commands: queue.Queue[mqtt.MQTTMessage | None] = queue.Queue()
        self._stop = threading.Event()
        self._interval_changed = threading.Event()
        self._interval = 30
        self._threads: list[threading.Thread] = []

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self, heartbeat_s: int) -> None:
        self._interval = heartbeat_s
        self._threads = [
            threading.Thread(target=self._run_commands, name="core-commands", daemon=True),
            threading.Thread(target=self._heartbeat, name="core-heartbeat", daemon=True),
        ]
        self.client.connect_async(self._broker.host, self._broker.port, keepalive=max(10, min(heartbeat_s, 60)))
        self.client.loop_start()
        for thread in self._threads:
            thread.start()

    def stop(self, announce_offline: bool = True) -> None:
        """Leave cleanly: a retained offline status (a clean DISCONNECT sends no will), then go."""
        self._stop.set()
        self._interval_changed.set()
        self._commands.put(None)
        if announce_offline and self.connected.is_set():
            payload = {**snapshots.offline_will(self.agent_id), "reason": "stopped"}
            info = self.client.publish(contract.topic(self.agent_id, contract.STATUS), json.dumps(payload), QOS, True)
            info.wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()

    def set_heartbeat_interval(self, seconds: int) -> None:
        self._interval = seconds
        self._interval_changed.set()  # the wait in progress ends now and starts over with the new interval

    # ---- callbacks (paho's network thread) -----------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
            logger.error("the broker refused the connection: %s", reason)
            return
        self.refused = None
        client.subscribe([(contract.topic(self.agent_id, t), QOS) for t in contract.COMMAND_TOPICS.values()])
        if self.core.ready:
            self.core.publish_snapshots()
        self.connected.set()
        logger.info("connected to %s:%s as %s", self._broker.host, self._broker.port, self.agent_id)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            logger.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._commands.put(message)

    # ---- threads ----------------------------------------------------------------------------

    def _run_commands(self) -> None:
        prefix = contract.topic(self.agent_id, "")
        while True:
            message = self._commands.get()
            if message is None or self._stop.is_set():
                return  # not acknowledged: the broker keeps it for the next connection
            if message.topic.startswith(prefix):
                try:
                    self.core.handle(message.topic[len(prefix) :], bytes(message.payload))
                except Exception:  # one bad command must not stop the core answering the next
                    logger.exception("command on %s failed", message.topic)
            self.client.ack(message.mid, message.qos)

    def _heartbeat(self) -> None:
        while not self._stop.is_set():
            self._interval_changed.clear()
            if self._interval_changed.wait(self._interval) or self._stop.is_set():
                continue  # the interval changed: start the new one now
            if self.connected.is_set() and self.core.ready:
                self.core.publish_snapshots((contract.STATUS,))
