"""Shared fixtures. Unit tests use the emulator in-process (no network); the template provisions
every table and queue, so no test keeps its own list of resources."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pytest

from lighthouse_tools.localcloud.atomicity import install_emulator_hooks
from lighthouse_tools.localcloud.cloud import FAKE_CREDENTIALS, REGION
from lighthouse_tools.localcloud.provision import Provisioner, Stack
from lighthouse_tools.template import load_template

if TYPE_CHECKING:
    from lighthouse.composition import Components

TEST_MASTER_SECRET = "unit-test-master-secret-" + "0123456789abcdef" * 2

# Never let a test reach a real AWS account.
os.environ.update(FAKE_CREDENTIALS)


@dataclass
class Provisioned:
    stack: Stack
    env: dict[str, str]

    def client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session().client(service, region_name=REGION)  # type: ignore[call-overload]

    def name(self, variable: str) -> str:
        return self.env[variable]

    @cached_property
    def components(self) -> Components:
        """The parts functions compose their roots from, over this emulator and environment."""
        from lighthouse.aws import AwsClients
        from lighthouse.composition import Components
        from lighthouse.config import Settings

        return Components(Settings(), AwsClients())


@pytest.fixture
def provisioned(monkeypatch: pytest.MonkeyPatch) -> Iterator[Provisioned]:
    """The template's resources in an in-process emulator, and the functions' environment set."""
    from moto import mock_aws

    with mock_aws():
        install_emulator_hooks()
        clients = {
            name: __import__("boto3").client(name, region_name=REGION)
            for name in ("dynamodb", "sqs", "secretsmanager", "s3", "stepfunctions")
        }
        stack = Provisioner(load_template(), clients).provision()
        env: dict[str, str] = {}
        for spec in stack.functions.values():
            env.update(spec.environment)
        env["LIGHTHOUSE_MODE"] = "local"
        env["POWERTOOLS_METRICS_DISABLED"] = "true"
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield Provisioned(stack, env)


@pytest.fixture
def parts(provisioned: Provisioned) -> Components:
    return provisioned.components
