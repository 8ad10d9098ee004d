"""A worker's AWS calls over its pipe (aws_pipe): a botocore client whose every request is handed to
the emulator's in-process handler and answered with the emulator's own status, headers and body."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from lighthouse_tools.localcloud import aws_pipe, calls


@pytest.fixture
def forwarded(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[boto3.session.Session, list[tuple[Any, ...]]]]:
    """A session whose clients forward every call, through a 'pipe' that answers on another thread
    as the emulator's reader does."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    sent: list[tuple[Any, ...]] = []
    forwarder: aws_pipe.Forwarder

    def send(message: tuple[Any, ...]) -> None:
        sent.append(message)
        _, call_id, method, url, headers, body = message
        threading.Thread(
            target=lambda: forwarder.resolve(call_id, *aws_pipe.answer(method, url, headers, body))
        ).start()

    forwarder = aws_pipe.Forwarder(send)
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        # Unlike in a worker, moto's own stubber is active here; the forwarder goes first.
        session._session.get_component("event_emitter").register_first("before-send", forwarder)
        yield session, sent


def _client(session: boto3.session.Session, service: str) -> Any:
    return session.client(service, config=Config(retries={"max_attempts": 1}))  # type: ignore[call-overload]


def test_calls_reach_the_emulator_over_the_pipe_and_errors_come_back_as_aws_errors(
    forwarded: tuple[boto3.session.Session, list[tuple[Any, ...]]],
) -> None:
    session, sent = forwarded
    dynamodb = _client(session, "dynamodb")
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="t", Item={"id": {"S": "a"}}, ConditionExpression="attribute_not_exists(id)")

    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(TableName="t", Item={"id": {"S": "a"}}, ConditionExpression="attribute_not_exists(id)")

    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert dynamodb.get_item(TableName="t", Key={"id": {"S": "a"}})["Item"] == {"id": {"S": "a"}}
    assert [message[0] for message in sent] == ["aws"] * 4
    assert all(message[3].startswith("https://dynamodb.us-east-1.amazonaws.com") for message in sent)


def test_a_streamed_body_is_sent_whole_and_the_function_is_named(
    forwarded: tuple[boto3.session.Session, list[tuple[Any, ...]]],
) -> None:
    session, sent = forwarded
    s3 = _client(session, "s3")
    s3.create_bucket(Bucket="workspace")

    with calls.counter.invoking("PipelineStageFunction"):
        s3.put_object(Bucket="workspace", Key="a.txt", Body=io.BytesIO(b"hello, pipe"))

    assert s3.get_object(Bucket="workspace", Key="a.txt")["Body"].read() == b"hello, pipe"
    put = sent[1]
    assert put[4][calls.FUNCTION_HEADER] == "PipelineStageFunction"
    assert calls.FUNCTION_HEADER not in sent[2][4]  # outside an invocation nobody is named


def test_an_address_no_service_answers_is_a_404_not_a_network_call() -> None:
    with mock_aws():
        status, _, body = aws_pipe.answer("GET", "https://example.com/x", {}, b"")

    assert status == 404
    assert b"example.com" in body


def test_calls_waiting_when_the_emulator_goes_away_fail() -> None:
    forwarder = aws_pipe.Forwarder(lambda message: None)
    failed: list[BaseException] = []

    def call() -> None:
        request = type("Request", (), {"headers": {}, "method": "GET", "url": "https://x", "body": b""})()
        try:
            forwarder(request)
        except ConnectionError as error:
            failed.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    while not forwarder._pending:  # the call is waiting for its reply
        pass
    forwarder.fail_all("the local cloud stopped")
    thread.join(5)

    assert [str(error) for error in failed] == ["the local cloud stopped"]
