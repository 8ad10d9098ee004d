"""The master secret is never defaulted: a missing one stops start-up with a clear error."""

from __future__ import annotations

import pytest

from lighthouse.config import Settings
from lighthouse.errors import ConfigurationError
from lighthouse.secrets import resolve_master_secret
from tests.conftest import Provisioned


class NoSecretsManager:
    def get_secret_value(self, **kwargs: str) -> dict[str, str]:
        raise AssertionError("must not be called")


def test_missing_secret_in_aws_mode_stops_start_up() -> None:
    settings = Settings(mode="aws", master_secret="", master_secret_arn="")
    with pytest.raises(ConfigurationError, match="LIGHTHOUSE_MASTER_SECRET_ARN"):
        resolve_master_secret(settings, NoSecretsManager())


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 32"):
        resolve_master_secret(Settings(master_secret="short"), NoSecretsManager())


def test_the_environment_secret_wins_without_calling_secrets_manager() -> None:
    assert resolve_master_secret(Settings(master_secret="e" * 40), NoSecretsManager()) == "e" * 40


def test_the_secret_comes_from_secrets_manager(provisioned: Provisioned) -> None:
    settings = Settings()
    secret = resolve_master_secret(settings, provisioned.client("secretsmanager"))
    assert len(secret) == 64  # the template's GenerateSecretString length


def test_an_unreadable_secret_arn_is_a_configuration_error(provisioned: Provisioned) -> None:
    settings = Settings(master_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:missing")
    with pytest.raises(ConfigurationError, match="cannot read the master secret"):
        resolve_master_secret(settings, provisioned.client("secretsmanager"))
