"""The cost model: DynamoDB's item size and request unit rules, and dollars per 1,000 operations."""

from __future__ import annotations

import pytest

from lighthouse_tools.costs import PRICES_USD, Usage, cost_per_thousand, dynamodb_units, item_size, usage_of
from lighthouse_tools.localcloud.workers import _topics_of


def test_item_size_follows_dynamodb_rules() -> None:
    # Names count in UTF-8 bytes; a string by its UTF-8 bytes; a number by ~1 byte per two
    # significant digits plus one; booleans and nulls one byte.
    assert item_size({"id": {"S": "abc"}}) == 2 + 3
    assert item_size({"é": {"S": "é"}}) == 2 + 2
    assert item_size({"n": {"N": "12345"}}) == 1 + 3 + 1
    assert item_size({"ok": {"BOOL": True}, "z": {"NULL": True}}) == 2 + 1 + 1 + 1
    assert item_size({"b": {"B": "AAEC"}}) == 1 + 3  # base64 of three bytes
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + (1 + 1) + 1


def test_write_units_round_up_per_kib_and_double_in_transactions() -> None:
    small = {"k": {"S": "x"}}
    large = {"k": {"S": "x" * 2500}}  # 2,501 bytes: three units

    assert dynamodb_units("PutItem", {"Item": small}, {}) == (0.0, 1.0)
    assert dynamodb_units("PutItem", {"Item": large}, {}) == (0.0, 3.0)
    transaction = {"TransactItems": [{"Put": {"Item": large}}, {"ConditionCheck": {"Key": small}}]}
    assert dynamodb_units("TransactWriteItems", transaction, {}) == (0.0, 2 * 3 + 2 * 1)
    batch = {"RequestItems": {"t": [{"PutRequest": {"Item": small}}, {"DeleteRequest": {"Key": small}}]}}
    assert dynamodb_units("BatchWriteItem", batch, {}) == (0.0, 2.0)


def test_read_units_per_four_kib_halved_unless_consistent() -> None:
    item = {"k": {"S": "x" * 5000}}  # two 4 KiB units

    assert dynamodb_units("GetItem", {"ConsistentRead": True}, {"Item": item}) == (2.0, 0.0)
    assert dynamodb_units("GetItem", {}, {"Item": item}) == (1.0, 0.0)
    assert dynamodb_units("GetItem", {}, {}) == (0.5, 0.0)  # a miss still costs the minimum
    # A query is charged for the page as a whole, not per item.
    small = {"k": {"S": "x"}}
    assert dynamodb_units("Query", {"ConsistentRead": True}, {"Items": [small] * 10}) == (1.0, 0.0)
    assert dynamodb_units("TransactGetItems", {}, {"Responses": [{"Item": small}]}) == (2.0, 0.0)
    assert dynamodb_units("DescribeTable", {}, {}) == (0.0, 0.0)


def test_cost_per_thousand_adds_every_service() -> None:
    usage = Usage(
        operations=10,
        lambda_invocations=50,
        lambda_gb_seconds=2.0,
        api_requests=40,
        dynamodb_read_units=100,
        dynamodb_write_units=200,
        transitions=30,
        sqs_requests=0,
    )

    cost = cost_per_thousand(usage)

    scale = 1000 / 10
    assert cost["stepfunctions"] == pytest.approx(30 * PRICES_USD["stepfunctions_transition"] * scale, rel=1e-4)
    assert cost["apigateway"] == pytest.approx(40 * PRICES_USD["apigateway_request"] * scale, rel=1e-4)
    assert cost["sqs"] == 0
    parts = sum(value for name, value in cost.items() if name != "total")
    assert cost["total"] == pytest.approx(parts, abs=1e-5)
    assert cost_per_thousand(Usage(0, 0, 0.0, 0, 0.0, 0.0, 0, 0)) == {}


def test_usage_reads_the_counter_figures() -> None:
    counted = {
        "by_operation": {"sqs:SendMessage": 2, "dynamodb:PutItem": 4},
        "invocations": {"ApiFunction": 3, "DispatchFunction": 1},
        "lambda_ms": {"ApiFunction": 3000.0, "DispatchFunction": 1000.0},
        "transitions": 5,
        "dynamodb_units": {"read": 1.5, "write": 4},
    }

    usage = usage_of(counted, {"ApiFunction": 1024, "DispatchFunction": 512}, "ApiFunction", operations=2)

    assert usage.lambda_invocations == 4
    assert usage.lambda_gb_seconds == pytest.approx(3.0 + 0.5)
    assert usage.api_requests == 3
    assert usage.sqs_requests == 2 + 2 * 2  # each message sent is also received and deleted
    assert (usage.dynamodb_read_units, usage.dynamodb_write_units, usage.transitions) == (1.5, 4.0, 5)


def test_worker_wakeups_name_the_streams_and_models_written() -> None:
    tables = {"events": "stream", "models": "model"}
    transaction = {
        "TransactItems": [
            {"Put": {"TableName": "events", "Item": {"stream_id": {"S": "elicitation-1"}, "version": {"N": "1"}}}},
            {"Update": {"TableName": "models", "Key": {"model": {"S": "pending#bob"}, "id": {"S": "1"}}}},
            {"ConditionCheck": {"TableName": "models", "Key": {"model": {"S": "never"}}}},
            {"Put": {"TableName": "other", "Item": {"stream_id": {"S": "ignored"}}}},
        ]
    }

    assert _topics_of("TransactWriteItems", transaction, tables) == ["stream:elicitation-1", "model:pending#bob"]
    assert _topics_of("PutItem", {"TableName": "models", "Item": {"model": {"S": "m"}}}, tables) == ["model:m"]
    assert _topics_of("DeleteItem", {"TableName": "events", "Key": {}}, tables) == []
