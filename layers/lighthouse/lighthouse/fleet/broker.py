"""The broker as the platform sees it: publish a command, and grant or revoke an MQTT account.

Locally the broker is mosquitto with its dynamic-security plugin, managed over MQTT itself (the
`$CONTROL/dynamic-security/v1` topic), so the API function's code is the same whether mosquitto
runs beside it or elsewhere. On AWS, IoT Core publishes through `iot-data` and the custom
authorizer checks the signed password itself: there is no account to create.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlparse

from lighthouse.errors import DependencyUnavailable
from lighthouse.fleet.contract import PREFIX, Acl

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
ADMIN_ROLE = "lighthouse-fleet-admin"
PLATFORM_USERNAME = "lighthouse-platform"
CONFIRM_SECONDS = 10.0


class BrokerUnavailable(DependencyUnavailable):
    code = "BROKER_UNAVAILABLE"


class Broker(Protocol):
    def publish(self, topic: str, payload: dict[str, Any], expiry_seconds: int) -> None: ...

    def grant(self, username: str, password: str, acl: Acl | None) -> None:
        """An account for `username` (client id the same); `acl` None: a fleet admin."""

    def revoke(self, username: str) -> None: ...


def admin_role_acls() -> list[dict[str, Any]]:
    return [
        {"acltype": "subscribePattern", "topic": f"{PREFIX}/#", "allow": True, "priority": 1},
        {"acltype": "publishClientSend", "topic": f"{PREFIX}/+/core/cmd/#", "allow": True, "priority": 1},
        {"acltype": "publishClientSend", "topic": f"{PREFIX}/+/core/cfg/set", "allow": True, "priority": 1},
    ]


def agent_role_acls(acl: Acl) -> list[dict[str, Any]]:
    # Literal topics only: mosquitto 2.0.11's dynamic security does not substitute %u in ACLs.
    return [
        *({"acltype": "publishClientSend", "topic": t, "allow": True, "priority": 1} for t in acl.publish),
        *({"acltype": "subscribeLiteral", "topic": t, "allow": True, "priority": 1} for t in acl.subscribe),
    ]


def grant_commands(username: str, password: str, acl: Acl | None) -> list[dict[str, Any]]:
    """Dynamic-security commands that leave exactly this account, whatever existed before."""
    role = ADMIN_ROLE if acl is None else f"agent:{username}"
    # The client goes first: mosquitto 2.0.11 crashes later (use after free) when a role is deleted
    # while a client still holds it.
    commands: list[dict[str, Any]] = [{"command": "deleteClient", "username": username}]
    if acl is not None:
        commands += [{"command": "deleteRole", "rolename": role}, {"command": "createRole", "rolename": role}]
        commands += [{"command": "addRoleACL", "rolename": role, **entry} for entry in agent_role_acls(acl)]
    commands += [
        {
            "command": "createClient",
            "username": username,
            "password": password,
            "clientid": username,
            "roles": [{"rolename": role, "priority": 1}],
        },
    ]
    return commands


# Failures a grant's clean-slate steps are expected to have.
_EXPECTED = ("not found", "already exists")


class MosquittoBroker:
    """One MQTT connection per container, as the platform's own account (an admin of dynamic
    security and of the fleet topics), opened on first use and kept."""

    def __init__(self, url: str, password: Callable[[], str], username: str = PLATFORM_USERNAME) -> None:
        parsed = urlparse(url)
        self._host, self._port = parsed.hostname or "127.0.0.1", parsed.port or 1883
        self._username, self._password = username, password
        self._client: Any = None
        self._lock = threading.Lock()
        self._responses: dict[str, Any] = {}
        self._arrived = threading.Condition()

    def _connected(self) -> Any:
        with self._lock:
            if self._client is not None and self._client.is_connected():
                return self._client
            if self._client is not None:  # lost (a broker restart): start over rather than wait for it
                self._client.loop_stop()
                self._client = None
            import paho.mqtt.client as mqtt
            from paho.mqtt.enums import CallbackAPIVersion

            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=f"{self._username}-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
            )
            client.username_pw_set(self._username, self._password())
            client.on_message = self._on_message
            ready = threading.Event()

            def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
                # On every (re)connect: a new session has no subscriptions, and answers would be lost.
                client.subscribe(f"{CONTROL_TOPIC}/response", qos=1)
                ready.set()

            client.on_connect = on_connect
            try:
                client.connect(self._host, self._port, keepalive=30)
            except OSError as error:
                raise BrokerUnavailable(
                    f"cannot reach the MQTT broker at {self._host}:{self._port}: {error}"
                ) from error
            client.loop_start()
            if not ready.wait(CONFIRM_SECONDS) or not client.is_connected():
                client.loop_stop()
                raise BrokerUnavailable("the MQTT broker did not accept the platform's connection")
            self._client = client
            return client

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._arrived:
            try:
                body = json.loads(message.payload)
            except ValueError:
                return
            # Responses carry back the correlationData of their command (dynsec echoes it).
            for response in body.get("responses", []):
                key = response.get("correlationData")
                if key:
                    self._responses[key] = response
            self._arrived.notify_all()

    def publish(self, topic: str, payload: dict[str, Any], expiry_seconds: int) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.MessageExpiryInterval = max(1, int(expiry_seconds))
        info = self._connected().publish(topic, json.dumps(payload), qos=1, properties=properties)
        info.wait_for_publish(CONFIRM_SECONDS)
        if not info.is_published():
            raise BrokerUnavailable(f"the broker did not acknowledge the publish to {topic}")

    def control(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        client = self._connected()
        keys = []
        for command in commands:
            command["correlationData"] = key = uuid.uuid4().hex
            keys.append(key)
        client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)
        deadline = time.monotonic() + CONFIRM_SECONDS
        with self._arrived:
            while not all(k in self._responses for k in keys):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrokerUnavailable("the broker's dynamic-security plugin did not answer")
                self._arrived.wait(left)
            return [self._responses.pop(k) for k in keys]

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None

    def grant(self, username: str, password: str, acl: Acl | None) -> None:
        responses = self.control(grant_commands(username, password, acl))
        failed = [r for r in responses if r.get("error") and not any(e in r["error"].lower() for e in _EXPECTED)]
        if failed:
            raise BrokerUnavailable(f"the broker refused the account: {failed[0]['command']}: {failed[0]['error']}")

    def revoke(self, username: str) -> None:
        self.control([{"command": "deleteClient", "username": username}])


class IotCoreBroker:
    """IoT Core: commands through the data plane; accounts are the authorizer's business."""

    def __init__(self, iot_data: Callable[[], Any]) -> None:
        self._iot_data = iot_data

    def publish(self, topic: str, payload: dict[str, Any], expiry_seconds: int) -> None:
        self._iot_data().publish(
            topic=topic, qos=1, payload=json.dumps(payload).encode(), messageExpiry=max(1, int(expiry_seconds))
        )

    def grant(self, username: str, password: str, acl: Acl | None) -> None:
        return None

    def revoke(self, username: str) -> None:
        return None
