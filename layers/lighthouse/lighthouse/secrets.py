"""The master secret: from the environment (local runs) or Secrets Manager; never a default."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lighthouse.auth.keys import MIN_MASTER_SECRET_LENGTH
from lighthouse.config import Settings
from lighthouse.errors import ConfigurationError


def resolve_master_secret(settings: Settings, secrets_client: Any) -> str:
    """Return the master secret or stop start-up with a clear error."""
    secret = settings.master_secret
    if not secret and settings.master_secret_arn:
        try:
            secret = secrets_client.get_secret_value(SecretId=settings.master_secret_arn)["SecretString"]
        except (ClientError, BotoCoreError) as error:
            raise ConfigurationError(
                f"cannot read the master secret {settings.master_secret_arn!r} from Secrets Manager: {error}"
            ) from error
    if not secret:
        raise ConfigurationError(
            "no master secret: set LIGHTHOUSE_MASTER_SECRET_ARN (Secrets Manager) "
            "or LIGHTHOUSE_MASTER_SECRET; Lighthouse never falls back to a built-in value"
        )
    if len(secret) < MIN_MASTER_SECRET_LENGTH:
        raise ConfigurationError(f"the master secret must be at least {MIN_MASTER_SECRET_LENGTH} characters")
    return secret


def resolve_llm_api_key(settings: Settings, secrets_client: Any) -> str:
    """The LLM expert's API key: the setting (local runs) or the secret it names (a plain string, or JSON
    with an `api_key` field). Bedrock needs none: it signs with the function's IAM role."""
    if settings.validation_llm_api_key or settings.validation_llm_provider in ("", "bedrock"):
        return settings.validation_llm_api_key
    if not settings.validation_llm_api_key_secret_arn:
        raise ConfigurationError(
            f"the {settings.validation_llm_provider} LLM expert needs LIGHTHOUSE_VALIDATION_LLM_API_KEY_SECRET_ARN"
        )
    try:
        value = str(
            secrets_client.get_secret_value(SecretId=settings.validation_llm_api_key_secret_arn)["SecretString"]
        )
    except (ClientError, BotoCoreError) as error:
        raise ConfigurationError(f"cannot read the LLM API key from Secrets Manager: {error}") from error
    if value.lstrip().startswith("{"):
        import json

        return str(json.loads(value).get("api_key", ""))
    return value
