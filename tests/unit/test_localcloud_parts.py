"""Pieces of the local cloud that need no emulator: intrinsic resolution and schedule parsing."""

from __future__ import annotations

import pytest

from lighthouse_tools.localcloud.sources import failed_ids, rate_seconds
from lighthouse_tools.template import Resolver, TemplateError


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(
        parameters={"AWS::Region": "us-east-1", "Stage": "dev"},
        physical_ids={"Table": "lh-Table"},
        attributes={("Queue", "Arn"): "arn:aws:sqs:us-east-1:1:q"},
    )


def test_ref_getatt_sub_and_join(resolver: Resolver) -> None:
    assert resolver.resolve({"Ref": "Table"}) == "lh-Table"
    assert resolver.resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == "arn:aws:sqs:us-east-1:1:q"
    assert resolver.resolve({"Fn::Sub": "${Table}-${Stage}-${Queue.Arn}-${!Literal}"}) == (
        "lh-Table-dev-arn:aws:sqs:us-east-1:1:q-${Literal}"
    )
    assert resolver.resolve({"Fn::Sub": ["${X}/${AWS::Region}", {"X": {"Ref": "Table"}}]}) == "lh-Table/us-east-1"
    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}) == "a-dev"
    assert resolver.resolve({"Nested": [{"Ref": "Stage"}]}) == {"Nested": ["dev"]}


def test_unknown_references_and_functions_are_errors(resolver: Resolver) -> None:
    with pytest.raises(TemplateError, match="Missing"):
        resolver.resolve({"Ref": "Missing"})
    with pytest.raises(TemplateError, match="not available"):
        resolver.resolve({"Fn::GetAtt": ["Queue", "QueueName"]})
    with pytest.raises(TemplateError, match="not supported"):
        resolver.resolve({"Fn::ImportValue": "x"})


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_expressions(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


def test_cron_expressions_are_refused_locally_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="rate"):
        rate_seconds("cron(0 12 * * ? *)")


def test_partial_batch_responses() -> None:
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}) == ["a", "b"]
    assert failed_ids({"batchItemFailures": []}) == []
    assert failed_ids(None) == []


def test_a_task_callback_skips_executions_whose_worker_has_not_started() -> None:
    from types import MethodType, SimpleNamespace

    from moto.stepfunctions.parser.api import ExecutionStatus, InvalidToken
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    from lighthouse_tools.localcloud import moto_fixes

    moto_fixes.install()
    owner = SimpleNamespace(notify=lambda callback_id, outcome: callback_id == "its-token")
    waiting = SimpleNamespace(
        status=ExecutionStatus.RUNNING, exec_worker=SimpleNamespace(env=SimpleNamespace(callback_pool_manager=owner))
    )
    starting = SimpleNamespace(status=ExecutionStatus.RUNNING, exec_worker=SimpleNamespace(env=None))
    backend = SimpleNamespace(state_machines=[SimpleNamespace(executions=[starting, waiting])])
    backend._get_executions = MethodType(StepFunctionsParserBackend._get_executions, backend)

    # Before the fix, the starting execution's missing environment was an AttributeError (a 500).
    StepFunctionsParserBackend.send_task_success(backend, "its-token", "{}")  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        StepFunctionsParserBackend.send_task_success(backend, "someone-elses", "{}")  # type: ignore[arg-type]
