"""The deployment's runs configuration: schedules and the organisation's and projects' directives."""

from __future__ import annotations

import datetime
import json

from pydantic import TypeAdapter, ValidationError

from lighthouse.errors import ConfigurationError
from lighthouse.runs.catalog import BUILT_IN_AT, TEMPLATES
from lighthouse.runs.models import Directive


def schedules(text: str) -> dict[str, str]:
    """`{"log_triage": "0 * * * *"}`; each key a job template, each value a 5-field cron (UTC)."""
    if not text.strip():
        return {}
    from cronsim import CronSim, CronSimError

    try:
        parsed = TypeAdapter(dict[str, str]).validate_json(text)
    except ValidationError as error:
        raise ConfigurationError(f"LIGHTHOUSE_RUN_SCHEDULES is not a JSON object of strings: {error}") from error
    for job, expression in parsed.items():
        if job not in TEMPLATES:
            raise ConfigurationError(f"LIGHTHOUSE_RUN_SCHEDULES names an unknown job template {job!r}")
        try:
            CronSim(expression, datetime.datetime.now(datetime.UTC))
        except CronSimError as error:
            raise ConfigurationError(f"LIGHTHOUSE_RUN_SCHEDULES[{job!r}] is not a cron expression: {error}") from error
    return parsed


def configured_directives(text: str) -> dict[str, Directive]:
    """D2 (organisation) and D3 (project) directives, as the deployment's configuration gives them."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
        directives = [
            Directive.model_validate({"version": 1, "updated_at": BUILT_IN_AT, "updated_by": "configuration", **item})
            for item in raw
        ]
    except (ValueError, TypeError) as error:
        raise ConfigurationError(f"LIGHTHOUSE_RUN_DIRECTIVES is not a list of directives: {error}") from error
    for directive in directives:
        if directive.type not in ("D2", "D3"):
            raise ConfigurationError(f"configured directive {directive.directive_id!r} must be D2 or D3")
    return {d.directive_id: d for d in directives}
