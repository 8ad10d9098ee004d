"""Composition roots: each function composes what it uses from a `Components`, its handlers take the
root they are given (tests give fakes), and the local runtime retires containers on reconfiguration."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from lighthouse.aws import AwsClients
from lighthouse.composition import Components
from lighthouse.config import Settings
from lighthouse_tools.localcloud.provision import FunctionSpec
from lighthouse_tools.localcloud.runtime import FunctionRuntime
from tests.conftest import Provisioned

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def function_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_test_fn_{name}", FUNCTIONS / name / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Context:
    function_name = "test"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "req-1"


class NoSecrets(AwsClients):
    """Clients over the emulator, except that reading any secret fails the test."""

    def client(self, service: str) -> Any:
        if service == "secretsmanager":
            raise AssertionError("this function must not read a secret")
        return super().client(service)


def test_every_function_imports_without_settings_and_composes_on_first_use() -> None:
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("LIGHTHOUSE_")}
    try:
        for directory in sorted(p for p in FUNCTIONS.iterdir() if (p / "app.py").exists()):
            module = function_module(directory.name)
            assert callable(module.compose), directory.name
            entry = module.app if directory.name == "api" else module.handler
            assert callable(entry), directory.name
    finally:
        os.environ.update(saved)


def test_the_projector_never_reads_the_master_secret(provisioned: Provisioned) -> None:
    from lighthouse.agents.models import AgentRegistered
    from lighthouse.events.model import StoredEvent

    module = function_module("projector")
    parts = Components(Settings(), NoSecrets())
    handler = module.create_handler(lambda: module.compose(parts))
    registered = AgentRegistered(agent_id="quiet", role="agent", salt="s", registered_at=1.0)
    image = StoredEvent("agent#quiet", 1, registered, "e-1", 1.0).to_item()
    record = {"eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb", "dynamodb": {"NewImage": image}}

    result = handler({"Records": [record]}, Context())

    assert result == {"batchItemFailures": []}
    assert parts.read_models.get("agents", "quiet") is not None


def test_a_handler_runs_on_the_root_it_is_given() -> None:
    calls: list[tuple[str, ...]] = []

    class FakeValidations:
        def ask_expert(self, request_id: str, expert: str, task_token: str) -> dict[str, Any]:
            calls.append(("ask_expert", request_id, expert, task_token))
            return {"asked": expert}

    module = function_module("validation_round")
    handler = module.create_handler(lambda: FakeValidations())
    step = {"action": "ask_expert", "request_id": "r-1", "expert": "e-1", "task_token": "tok"}

    assert handler(step, Context()) == {"asked": "e-1"}
    assert calls == [("ask_expert", "r-1", "e-1", "tok")]
    with pytest.raises(ValueError, match="task token"):
        handler({"action": "ask_expert", "request_id": "r-1", "expert": "e-1"}, Context())


def test_reconfiguring_retires_containers_so_new_ones_compose_afresh(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import os\nLOADED = os.environ.get('PROBE_SETTING')\n"
        "def handler(event, context):\n    return {'loaded': LOADED}\n"
    )
    spec = FunctionSpec("Probe", "probe", "arn:probe", tmp_path, "app.handler", 30, 128, {}, {})
    runtime = FunctionRuntime({"Probe": spec}, max_concurrency=2)
    os.environ["PROBE_SETTING"] = "before"
    try:
        first = runtime.invoke("Probe", {}).payload
        os.environ["PROBE_SETTING"] = "after"
        warm = runtime.invoke("Probe", {}).payload
        runtime.recycle()
        fresh = runtime.invoke("Probe", {}).payload
    finally:
        os.environ.pop("PROBE_SETTING", None)

    assert (first, warm, fresh) == ({"loaded": "before"}, {"loaded": "before"}, {"loaded": "after"})
