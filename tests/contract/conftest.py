"""Backends for the contract suite: in memory, the embedded cloud's DynamoDB, and MiniStack."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from lighthouse_tools import ministack
from lighthouse_tools.localcloud.atomicity import install_emulator_hooks
from lighthouse_tools.localcloud.cloud import REGION
from tests.contract.backends import Backend, dynamodb, memory


@pytest.fixture(scope="session")
def ministack_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with ministack.running(tmp_path_factory.mktemp("ministack") / "ministack.log") as endpoint:
        yield endpoint


@pytest.fixture(params=["memory", "embedded", "ministack"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield memory()
    elif request.param == "embedded":
        from moto import mock_aws

        with mock_aws():
            install_emulator_hooks()  # the local cloud's patches: what `lighthouse up` runs on
            yield dynamodb("embedded", boto3.client("dynamodb", region_name=REGION))
    else:
        # A stock engine with no patch of ours.
        endpoint = request.getfixturevalue("ministack_endpoint")
        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="contract",
            aws_secret_access_key="contract",
        )
        yield dynamodb("ministack", client)
