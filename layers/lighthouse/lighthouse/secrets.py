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
