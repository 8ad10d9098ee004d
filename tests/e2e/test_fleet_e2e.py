"""The fleet end to end: `lighthouse up` (which starts mosquitto), `lighthouse agent-core` processes,
the contract's seven smoke scenarios driven with mosquitto_sub/mosquitto_pub, and commands and a
rollout through the HTTP API and the CLI (issue #15)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from lighthouse.fleet import contract
from tests.e2e.conftest import Platform, open_session, wait_for
from tests.fleet_helpers import core_environment, make_wheel

pytestmark = pytest.mark.target_gap("fleet-mqtt-broker")


class Account:
    """An agent registered through the CLI, with its MQTT credentials from the CLI."""

    def __init__(self, platform: Platform, agent_id: str, role: str = "agent") -> None:
        added = platform.cli("agents", "add", agent_id, "--role", role, "--json")
        assert added.returncode == 0, added.stderr
        self.agent_id = agent_id
        self.secret = json.loads(added.stdout)["secret"]
        granted = subprocess.run(
            [*_lighthouse(platform), "fleet", "mqtt-credentials", "--agent-id", agent_id],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "LIGHTHOUSE_AGENT_SECRET": self.secret},
        )  # fmt: skip
        assert granted.returncode == 0, granted.stderr
        self.mqtt = json.loads(granted.stdout)
        host, _, port = self.mqtt["mqtt_url"].removeprefix("mqtt://").partition(":")
        self.broker = ["-h", host, "-p", port, "-u", self.mqtt["username"], "-P", self.mqtt["password"], "-q", "1"]


def _lighthouse(platform: Platform) -> list[str]:
    from tests.e2e.conftest import LIGHTHOUSE

    return [LIGHTHOUSE, "--state-file", str(platform.state_file)]


class Core:
    """`lighthouse agent-core` (the CLI's entry point), in an environment of its own for components."""

    def __init__(self, python: Path, platform: Platform, account: Account, state_dir: Path) -> None:
        self.account = account
        self.state_dir = state_dir
        command = [str(python), "-m", "lighthouse_tools.cli", "--state-file", str(platform.state_file), "agent-core"]
        command += ["--agent-id", account.agent_id, "--state-dir", str(state_dir)]
        state_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log = state_dir.parent / f"{account.agent_id}.log"
        environment = {**os.environ, "LIGHTHOUSE_AGENT_SECRET": account.secret}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)

    def topic(self, suffix: str) -> str:
        return contract.topic(self.account.agent_id, suffix)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


def sub(account: Account, topic: str, count: int, seconds: int = 20, *extra: str) -> list[tuple[str, Any]]:
    """mosquitto_sub: the first `count` messages on `topic` (retained ones included), as (topic, payload)."""
    done = subprocess.run(
        ["mosquitto_sub", *account.broker, "-i", account.agent_id, "-t", topic,
         "-C", str(count), "-W", str(seconds), "-v", *extra],
        capture_output=True, text=True, timeout=seconds + 10, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"mosquitto_sub: {done.returncode} {done.stderr} {done.stdout}"
    return [(line.split(" ", 1)[0], json.loads(line.split(" ", 1)[1])) for line in done.stdout.splitlines()]


class Subscription:
    """mosquitto_sub running in the background while a command is published."""

    def __init__(self, account: Account, topic: str, count: int, seconds: int = 30) -> None:
        command = ["mosquitto_sub", *account.broker, "-i", account.agent_id, "-t", topic]
        command += ["-C", str(count), "-W", str(seconds), "-v", "-R"]  # -R: no stale retained messages
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)  # subscribed before the command goes out

    def messages(self) -> list[tuple[str, Any]]:
        out, err = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, f"mosquitto_sub: {self.process.returncode} {err} {out}"
        return [(line.split(" ", 1)[0], json.loads(line.split(" ", 1)[1])) for line in out.splitlines()]


def pub(account: Account, topic: str, payload: dict[str, Any]) -> None:
    done = subprocess.run(
        ["mosquitto_pub", *account.broker, "-i", account.agent_id, "-t", topic, "-m", json.dumps(payload)],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return core_environment(tmp_path_factory.mktemp("core-env") / "venv")


@pytest.fixture(scope="module")
def smoke(platform: Platform, python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    suffix = secrets.token_hex(3)
    watcher = Account(platform, f"smoke-watch-{suffix}", "admin")
    sender = Account(platform, f"smoke-send-{suffix}", "admin")
    agent = Account(platform, f"smoke-core-{suffix}")
    directory = tmp_path_factory.mktemp("smoke")
    core = Core(python, platform, agent, directory / agent.agent_id)
    online_since(watcher, core, 0.0)
    yield {"watcher": watcher, "sender": sender, "core": core, "directory": directory}
    core.stop()


def online_since(watcher: Account, core: Core, since: float, seconds: float = 90) -> None:
    """Until the core's retained status says online with a time after `since` (it (re)connected)."""

    def fresh() -> bool:
        done = subprocess.run(
            ["mosquitto_sub", *watcher.broker, "-i", watcher.agent_id, "-t", core.topic("status"),
             "-C", "1", "-W", "3", "--retained-only"],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not done.stdout.strip():
            return False
        status = json.loads(done.stdout)
        return bool(status.get("state") == "online" and status.get("ts", 0) > since)

    wait_for(fresh, timeout=seconds)


def _request() -> str:
    return f"smoke-{secrets.token_hex(8)}"


# ---- the contract's seven smoke scenarios, with mosquitto's own clients --------------------------


def test_smoke_1_boot_publishes_every_retained_snapshot(smoke: dict[str, Any]) -> None:
    core: Core = smoke["core"]
    messages = dict(sub(smoke["watcher"], core.topic("#"), len(contract.SNAPSHOTS), 30, "--retained-only"))
    assert set(messages) == {core.topic(name) for name in contract.SNAPSHOTS}
    assert messages[core.topic("status")]["state"] == "online"
    assert messages[core.topic("core/metadata")]["agent_id"] == core.account.agent_id
    assert all(payload["schema"] == "lighthouse.core.v1" for payload in messages.values())


def test_smoke_2_install_from_a_local_wheel(smoke: dict[str, Any]) -> None:
    core: Core = smoke["core"]
    wheel, digest = make_wheel(smoke["directory"] / "dist", "lh_smoke_comp", "1.0.0", "lh_smoke_comp")
    request_id = _request()
    results = Subscription(smoke["watcher"], core.topic("core/evt/components/install_result"), 1)
    command = {"request_id": request_id, "component_id": "smoke", "version": "1.0.0",
               "entrypoint": "lh_smoke_comp:main", "source": str(wheel), "sha256": digest}  # fmt: skip
    sent_at = time.time()
    pub(smoke["sender"], core.topic("core/cmd/components/install"), command)
    ((_, result),) = results.messages()
    assert result["request_id"] == request_id
    assert result["ok"] is True
    assert result["dist_name"] == "lh-smoke-comp"
    assert result["restart_required"] is True

    # the core restarted and its retained components snapshot lists the component
    def listed() -> bool:
        components = dict(sub(smoke["watcher"], core.topic("core/components"), 1, 10))
        return [c["component_id"] for c in components[core.topic("core/components")]["components"]] == ["smoke"]

    wait_for(listed, timeout=90)
    # The next test's command must reach the restarted core, not the one on its way out (whose own
    # components snapshot can satisfy `listed` before the restart).
    online_since(smoke["watcher"], core, sent_at)


def test_smoke_3_uninstall_then_uninstall_again_is_a_noop(smoke: dict[str, Any]) -> None:
    core: Core = smoke["core"]
    first, second = _request(), _request()
    results = Subscription(smoke["watcher"], core.topic("core/evt/components/uninstall_result"), 1)
    pub(smoke["sender"], core.topic("core/cmd/components/uninstall"), {"request_id": first, "component_id": "smoke"})
    sent_at = time.time()
    ((_, removed),) = results.messages()
    assert removed["ok"] is True
    assert removed["restart_required"] is True
    online_since(smoke["watcher"], core, sent_at)  # back online after its restart
    results = Subscription(smoke["watcher"], core.topic("core/evt/components/uninstall_result"), 1)
    pub(smoke["sender"], core.topic("core/cmd/components/uninstall"), {"request_id": second, "component_id": "smoke"})
    ((_, again),) = results.messages()
    assert again["ok"] is True
    assert again["noop"] is True
    assert again["restart_required"] is False


def test_smoke_4_config_set_valid_then_invalid(smoke: dict[str, Any]) -> None:
    core: Core = smoke["core"]
    results = Subscription(smoke["watcher"], core.topic("core/evt/cfg_set_result"), 1)
    pub(smoke["sender"], core.topic("core/cfg/set"), {"request_id": _request(), "set": {"log_level": "DEBUG"}})
    ((_, applied),) = results.messages()
    assert applied["ok"] is True
    assert applied["applied"] == {"log_level": "DEBUG"}
    cfg = dict(sub(smoke["watcher"], core.topic("core/cfg/state"), 1, 10))[core.topic("core/cfg/state")]
    assert cfg["log_level"] == "DEBUG"
    results = Subscription(smoke["watcher"], core.topic("core/evt/cfg_set_result"), 1)
    pub(smoke["sender"], core.topic("core/cfg/set"), {"request_id": _request(), "set": {"heartbeat_s": 2}})
    ((_, refused),) = results.messages()
    assert refused["ok"] is False
    assert "heartbeat_s" in refused["error"]
    assert dict(sub(smoke["watcher"], core.topic("core/cfg/state"), 1, 10))[core.topic("core/cfg/state")] == cfg


def test_smoke_5_refresh_republishes_every_snapshot(smoke: dict[str, Any]) -> None:
    core: Core = smoke["core"]
    request_id = _request()
    # the command itself (an admin sees it too), every snapshot again, and the result
    everything = Subscription(smoke["watcher"], core.topic("#"), len(contract.SNAPSHOTS) + 2)
    pub(smoke["sender"], core.topic("core/cmd/refresh"), {"request_id": request_id})
    messages = everything.messages()
    assert {topic for topic, _ in messages} == {core.topic(n) for n in contract.SNAPSHOTS} | {
        core.topic("core/evt/refresh_result"),
        core.topic("core/cmd/refresh"),
    }
    result = dict(messages)[core.topic("core/evt/refresh_result")]
    assert result["request_id"] == request_id
    assert result["ok"] is True


def test_smoke_6_the_heartbeat_follows_the_configured_interval(smoke: dict[str, Any]) -> None:
    core: Core = smoke["core"]
    results = Subscription(smoke["watcher"], core.topic("core/evt/cfg_set_result"), 1)
    pub(smoke["sender"], core.topic("core/cfg/set"), {"request_id": _request(), "set": {"heartbeat_s": 5}})
    assert results.messages()[0][1]["ok"] is True
    beats = sub(smoke["watcher"], core.topic("status"), 3, 20, "-R")
    times = [payload["ts"] for _, payload in beats]
    assert all(payload["heartbeat_s"] == 5 for _, payload in beats)
    assert 4.0 <= times[2] - times[1] <= 6.5, times


def test_smoke_7_kill_9_publishes_the_last_will(smoke: dict[str, Any]) -> None:
    core: Core = smoke["core"]
    offline = Subscription(smoke["watcher"], core.topic("status"), 1)
    core.process.kill()
    ((_, will),) = offline.messages()
    assert will["state"] == "offline"
    retained = dict(sub(smoke["watcher"], core.topic("status"), 1, 10, "--retained-only"))
    assert retained[core.topic("status")]["state"] == "offline"


# ---- the platform: HTTP, the CLI, a rollout ------------------------------------------------------


def test_two_cores_steered_through_http_and_the_cli_and_a_rollout_with_one_failure(
    platform: Platform, python: Path, tmp_path: Path
) -> None:
    tag = f"e2e-{secrets.token_hex(3)}"
    accounts = [Account(platform, f"{tag}-a"), Account(platform, f"{tag}-b")]
    # B has a component recorded without a dist name: a strict uninstall of it fails there
    (tmp_path / accounts[1].agent_id).mkdir(parents=True)
    legacy = {"legacy": {"component_id": "legacy", "version": "0.9", "entrypoint": "legacy:main"}}
    (tmp_path / accounts[1].agent_id / "components.json").write_text(json.dumps(legacy))
    cores = [Core(python, platform, account, tmp_path / account.agent_id) for account in accounts]
    try:

        def both_online() -> bool:
            listing = platform.cli("fleet", "ls", "--status", "online").stdout
            return all(account.agent_id in listing for account in accounts)

        wait_for(both_online, timeout=30)
        for account in accounts:
            assert platform.cli("fleet", "tags", account.agent_id, tag).returncode == 0
        # the CLI: a refresh, an install from a wheel it uploads
        refreshed = platform.cli("fleet", "refresh", accounts[0].agent_id, "--wait", "20")
        assert refreshed.returncode == 0, refreshed.stderr
        assert json.loads(refreshed.stdout)["status"] == "succeeded"
        wheel, _ = make_wheel(tmp_path / "dist", "lh_e2e_comp", "2.0.0", "lh_e2e_comp")
        installed = platform.cli(
            "fleet", "install", accounts[0].agent_id, "--component", "e2e", "--version", "2.0.0",
            "--entrypoint", "lh_e2e_comp:main", "--wheel", str(wheel), "--wait", "20",
        )  # fmt: skip
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert json.loads(installed.stdout)["result"]["dist_name"] == "lh-e2e-comp"
        # HTTP: a config change, waited for
        operator = _operator(platform)
        sent = operator.post(
            f"{platform.api_url}/fleet/agents/{accounts[1].agent_id}/commands",
            json={"type": "cfg_set", "set": {"telemetry_enabled": False}},
            timeout=30,
        )
        assert sent.status_code == 202, sent.text
        view = operator.get(f"{platform.api_url}/fleet/commands/{sent.json()['request_id']}?wait=20", timeout=30).json()
        assert view["status"] == "succeeded", view
        shown = json.loads(platform.cli("fleet", "show", accounts[1].agent_id).stdout)
        wait_for(
            lambda: (
                json.loads(platform.cli("fleet", "show", accounts[1].agent_id).stdout)["snapshots"]["core/cfg/state"][
                    "telemetry_enabled"
                ]
                is False
            )
        )
        assert shown["presence"] == "online"
        # a rollout of the uninstall: the canary (A) succeeds, B fails, the rollout halts
        body = {
            "command": {"type": "uninstall", "component_id": "legacy"},
            "selector": {"tags": [tag]},
            "batch_size": 5,
            "max_failure_percent": 20,
            "batch_timeout_seconds": 30,
        }
        started = operator.post(f"{platform.api_url}/fleet/rollouts", json=body, timeout=30)
        assert started.status_code == 202, started.text
        rollout = f"{platform.api_url}/fleet/rollouts/{started.json()['rollout_id']}"
        finished = wait_for(lambda: (v := operator.get(rollout, timeout=30).json())["status"] != "running" and v, 60)
        assert finished["status"] == "halted"
        assert finished["outcomes"] == {accounts[0].agent_id: "succeeded", accounts[1].agent_id: "failed"}
    finally:
        for core in cores:
            core.stop()


def _operator(platform: Platform) -> requests.Session:
    credential = json.loads((platform.state_file.parent / "operator.json").read_text())
    session = requests.Session()
    token = open_session(platform, credential["agent_id"], credential["secret"])
    session.headers["Authorization"] = f"Bearer {token}"
    return session
