"""The agent core without MQTT: snapshots, the config store, components' names, idempotent results,
and the order of a restart (GIVEN/WHEN/THEN in each test's comments)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lighthouse.fleet import contract
from lighthouse_tools.agent_core import snapshots
from lighthouse_tools.agent_core.components import ComponentError, Components, dist_name_of_wheel, normalize
from lighthouse_tools.agent_core.config_store import DEFAULTS, ConfigError, ConfigStore
from lighthouse_tools.agent_core.core import Core, CoreContext
from lighthouse_tools.agent_core.results import ResultStore
from tests.fleet_helpers import make_wheel

IDENTITY = snapshots.Identity("a1", "0.1.0", "Linux", "3.11.7", "host-1")


# ---- snapshots are pure -----------------------------------------------------------------------


def test_snapshots_are_functions_of_state_alone() -> None:
    runtime = snapshots.Runtime(started_at=100.0, last_command={"type": "refresh"}, restart_pending=True)
    assert snapshots.status("online", 130.0, 30) == {
        "schema": "lighthouse.core.v1", "state": "online", "ts": 130.0, "heartbeat_s": 30,
    }  # fmt: skip
    assert snapshots.core_state(runtime, 142.5)["uptime_s"] == 42.5
    assert snapshots.core_state(runtime, 142.5)["restart_pending"] is True
    assert snapshots.core_state(runtime, 50.0)["uptime_s"] == 0.0  # a clock step back is not negative uptime
    assert snapshots.metadata(IDENTITY) == snapshots.metadata(IDENTITY)
    assert snapshots.metadata(IDENTITY)["core_version"] == "0.1.0"

    def entry(name: str, version: str) -> dict[str, Any]:
        return {"component_id": name, "version": version, "dist_name": name, "entrypoint": f"{name}:main",
                "installed_at": 1.0, "sha256": "x"}  # fmt: skip

    registry = {"b": entry("b", "2"), "a": entry("a", "1")}
    listed = snapshots.components(registry)
    assert [c["component_id"] for c in listed["components"]] == ["a", "b"]
    assert "sha256" not in listed["components"][0]
    assert listed["count"] == 2
    assert snapshots.cfg_state(DEFAULTS) == {"schema": "lighthouse.core.v1", **DEFAULTS}
    assert snapshots.offline_will("a1")["state"] == "offline"


# ---- config store -----------------------------------------------------------------------------


def test_config_store_accepts_valid_keys_and_writes_them_atomically(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "config.json")
    assert store.get() == DEFAULTS
    applied = store.apply({"heartbeat_s": 60, "log_level": "DEBUG", "telemetry_enabled": True})
    assert applied == {"heartbeat_s": 60, "log_level": "DEBUG"}  # telemetry was already on
    assert json.loads((tmp_path / "config.json").read_text())["heartbeat_s"] == 60
    assert ConfigStore(tmp_path / "config.json").get()["log_level"] == "DEBUG"  # read back from disk
    assert not list(tmp_path.glob(".config.json.*"))  # no temp file left behind


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"heartbeat_s": 4}, "heartbeat_s"),
        ({"heartbeat_s": 3601}, "heartbeat_s"),
        ({"heartbeat_s": "30"}, "heartbeat_s"),
        ({"heartbeat_s": True}, "heartbeat_s"),
        ({"log_level": "TRACE"}, "log_level"),
        ({"telemetry_enabled": "yes"}, "telemetry_enabled"),
        ({"colour": "blue"}, "unknown key"),
        ({"heartbeat_s": 60, "colour": "blue"}, "unknown key"),
        ({"log_level": None}, "may not be null"),
    ],
)
def test_a_config_change_with_any_bad_key_changes_nothing(tmp_path: Path, change: dict[str, Any], reason: str) -> None:
    store = ConfigStore(tmp_path / "config.json")
    with pytest.raises(ConfigError) as refused:
        store.apply(change)
    assert any(reason in r for r in refused.value.reasons)
    assert store.get() == DEFAULTS
    assert not (tmp_path / "config.json").exists()


# ---- components -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "dist"),
    [
        ("lighthouse_agent_cpu-1.0.0-py3-none-any.whl", "lighthouse-agent-cpu"),
        ("Lighthouse.Agent__GPU-2.1-py3-none-any.whl", "lighthouse-agent-gpu"),
        ("x-0.1-cp311-cp311-manylinux_2_17_x86_64.whl", "x"),
        ("pkg-1.0-1build-py3-none-any.whl", "pkg"),
    ],
)
def test_dist_name_comes_from_the_wheel_name_pep503_normalised(filename: str, dist: str) -> None:
    assert dist_name_of_wheel(filename) == dist


@pytest.mark.parametrize("filename", ["pkg.tar.gz", "pkg-1.0.whl", "-1.0-py3-none-any.whl", "../x-1-py3-none-any.whl"])
def test_a_file_that_is_not_a_wheel_is_refused(filename: str) -> None:
    with pytest.raises(ComponentError):
        dist_name_of_wheel(filename)


def test_normalize_folds_runs_of_separators() -> None:
    assert normalize("A_b.-C") == "a-b-c"


def test_an_install_whose_sha256_does_not_match_installs_nothing(tmp_path: Path) -> None:
    wheel, _digest = make_wheel(tmp_path / "dist", "demo_comp", "1.0", "demo_comp")
    components = Components(tmp_path / "state", python="/nonexistent/python")  # pip would fail if reached
    command = contract.Install(
        request_id="req-00000001", component_id="demo", version="1.0", entrypoint="demo_comp:main",
        source=str(wheel), sha256="0" * 64,
    )  # fmt: skip
    with pytest.raises(ComponentError, match="sha256 mismatch"):
        components.install(command)
    assert components.installed() == {}


@pytest.mark.parametrize("source", ["http://example.com/x-1-py3-none-any.whl", "ftp://h/x.whl", "relative/x.whl"])
def test_sources_other_than_https_loopback_http_or_an_absolute_path_are_refused(tmp_path: Path, source: str) -> None:
    components = Components(tmp_path)
    command = contract.Install(
        request_id="req-00000001",
        component_id="demo",
        version="1.0",
        entrypoint="m:main",
        source=source,
        sha256="0" * 64,
    )
    with pytest.raises(ComponentError):
        components.install(command)


def test_uninstall_is_strict_and_absent_components_are_a_noop(tmp_path: Path) -> None:
    components = Components(tmp_path, python="/nonexistent/python")
    assert components.uninstall(contract.Uninstall(request_id="req-00000002", component_id="ghost")).fields["noop"]
    (tmp_path / "components.json").write_text(json.dumps({"legacy": {"component_id": "legacy", "version": "1"}}))
    with pytest.raises(ComponentError, match="no recorded dist_name"):
        components.uninstall(contract.Uninstall(request_id="req-00000003", component_id="legacy"))


# ---- results by request id ------------------------------------------------------------------


def test_results_are_kept_by_request_id(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    assert store.get("req-1") is None
    store.put("req-1", {"ok": True})
    assert ResultStore(tmp_path).get("req-1") == {"ok": True}
    assert store.get("req-2") is None


# ---- the core, with a publisher that records --------------------------------------------------


class Sent:
    def __init__(self, log: list[str], topic: str) -> None:
        self._log, self._topic = log, topic

    def wait_for_publish(self, timeout: float | None = None) -> None:
        self._log.append(f"confirmed {self._topic}")


class Recorder:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.published: list[tuple[str, dict[str, Any], bool]] = []

    def publish(self, topic: str, payload: dict[str, Any], retain: bool) -> Sent:
        self.published.append((topic, payload, retain))
        self.log.append(f"published {topic}")
        return Sent(self.log, topic)


def _core(tmp_path: Path, recorder: Recorder, components: Components | None = None) -> tuple[Core, list[int]]:
    intervals: list[int] = []
    core = Core()
    core.set_context(
        CoreContext(
            identity=IDENTITY,
            runtime=snapshots.Runtime(started_at=0.0),
            config=ConfigStore(tmp_path / "config.json"),
            components=components or Components(tmp_path),
            results=ResultStore(tmp_path / "results"),
            publisher=recorder,
            on_heartbeat_change=intervals.append,
            on_restart=lambda: recorder.log.append("restart"),
            clock=lambda: 1000.0,
        )
    )
    return core, intervals


def _body(**fields: Any) -> bytes:
    return json.dumps({"schema": contract.SCHEMA, **fields}).encode()


def test_commands_before_the_context_is_ready_are_refused() -> None:
    assert Core().handle(contract.COMMAND_TOPICS["refresh"], _body(request_id="req-00000001")) is None


def test_a_repeated_request_id_gets_the_stored_result_and_changes_nothing(tmp_path: Path) -> None:
    recorder = Recorder()
    core, intervals = _core(tmp_path, recorder)
    first = core.handle(contract.COMMAND_TOPICS["cfg_set"], _body(request_id="req-00000001", set={"heartbeat_s": 60}))
    assert first is not None
    assert first["ok"]
    assert first["applied"] == {"heartbeat_s": 60}
    # WHEN the same request id comes again with another change
    again = core.handle(contract.COMMAND_TOPICS["cfg_set"], _body(request_id="req-00000001", set={"heartbeat_s": 90}))
    # THEN the first result is published again and the config is as the first command left it
    assert again == first
    assert ConfigStore(tmp_path / "config.json").get()["heartbeat_s"] == 60
    assert intervals == [60]
    results = [p for t, p, _ in recorder.published if t.endswith("cfg_set_result")]
    assert results == [first, first]


def test_an_invalid_config_answers_ok_false_with_reasons_and_publishes_no_new_state(tmp_path: Path) -> None:
    recorder = Recorder()
    core, intervals = _core(tmp_path, recorder)
    result = core.handle(contract.COMMAND_TOPICS["cfg_set"], _body(request_id="req-00000002", set={"heartbeat_s": 1}))
    assert result is not None
    assert result["ok"] is False
    assert result["reasons"]
    assert intervals == []
    assert not any(t.endswith("core/cfg/state") for t, _, _ in recorder.published)


def test_an_invalid_command_is_answered_not_run(tmp_path: Path) -> None:
    recorder = Recorder()
    core, _ = _core(tmp_path, recorder)
    result = core.handle(contract.COMMAND_TOPICS["install"], _body(request_id="req-00000003", component_id="UPPER"))
    assert result is not None
    assert result["ok"] is False
    assert "invalid command" in result["error"]
    assert core.handle(contract.COMMAND_TOPICS["refresh"], b"not json") is None
    assert core.handle("core/cmd/unknown", _body(request_id="req-00000004")) is None


def test_refresh_republishes_every_snapshot_retained(tmp_path: Path) -> None:
    recorder = Recorder()
    core, _ = _core(tmp_path, recorder)
    result = core.handle(contract.COMMAND_TOPICS["refresh"], _body(request_id="req-00000005"))
    assert result is not None
    assert result["snapshots_updated"] == list(contract.SNAPSHOTS)
    retained = {t.removeprefix("lighthouse/agents/a1/") for t, _, retain in recorder.published if retain}
    assert retained == set(contract.SNAPSHOTS)


class FakeComponents(Components):
    def install(self, command: contract.Install) -> Any:
        from lighthouse_tools.agent_core.components import Outcome

        return Outcome({"component_id": command.component_id, "version": command.version, "dist_name": "d"}, True)


def test_a_restart_comes_only_after_the_result_was_confirmed_published(tmp_path: Path) -> None:
    recorder = Recorder()
    core, _ = _core(tmp_path, recorder, FakeComponents(tmp_path))
    body = _body(
        request_id="req-00000006", component_id="demo", version="1.0", entrypoint="m:main",
        source="/tmp/x-1.0-py3-none-any.whl", sha256="0" * 64,
    )  # fmt: skip
    result = core.handle(contract.COMMAND_TOPICS["install"], body)
    assert result is not None
    assert result["restart_required"] is True
    topic = "lighthouse/agents/a1/" + contract.RESULT_TOPICS["install"]
    assert recorder.log[-3:] == [f"published {topic}", f"confirmed {topic}", "restart"]
    state = [p for t, p, _ in recorder.published if t.endswith("core/state")][-1]
    assert state["restart_pending"] is True
