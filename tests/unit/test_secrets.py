"""The master secret is never defaulted: a missing one stops start-up with a clear error."""

from __future__ import annotations

import pytest

from lighthouse.config import Settings
from lighthouse.errors import ConfigurationError
from lighthouse.secrets import resolve_llm_api_key, resolve_master_secret
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


def test_the_llm_key_comes_from_secrets_manager_as_text_or_json(provisioned: Provisioned) -> None:
    secrets = provisioned.client("secretsmanager")
    plain = secrets.create_secret(Name="llm-plain", SecretString="sk-plain")["ARN"]
    as_json = secrets.create_secret(Name="llm-json", SecretString='{"api_key": "sk-json"}')["ARN"]
    for arn, expected in ((plain, "sk-plain"), (as_json, "sk-json")):
        settings = Settings(validation_llm_provider="openai", validation_llm_api_key_secret_arn=arn)
        assert resolve_llm_api_key(settings, secrets) == expected


def test_the_llm_key_is_required_except_for_bedrock() -> None:
    with pytest.raises(ConfigurationError, match="API_KEY_SECRET_ARN"):
        resolve_llm_api_key(Settings(validation_llm_provider="anthropic"), NoSecretsManager())
    assert resolve_llm_api_key(Settings(validation_llm_provider="bedrock"), NoSecretsManager()) == ""
    assert (
        resolve_llm_api_key(Settings(validation_llm_provider="openai", validation_llm_api_key="k"), NoSecretsManager())
        == "k"
    )
