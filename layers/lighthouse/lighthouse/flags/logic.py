"""Pure decisions about flags: the declared flags, the evaluation context, validation, rollouts."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from aws_lambda_powertools.utilities.feature_flags.exceptions import SchemaValidationError
from aws_lambda_powertools.utilities.feature_flags.schema import SchemaValidator

from lighthouse.errors import ValidationFailed
from lighthouse.flags.models import FLAG_NAME, DeclaredFlag, FlagsDocument

WEBSOCKET_PUSH = "websocket_push"
GATE_DENY_BLOCKING_RULES = "gate_deny_blocking_rules"
GATE_DENY_OUTSIDE_ROOTS = "gate_deny_outside_roots"
DURABLE_RECOVERY = "durable_recovery"
# What each flag does and its value when the document does not name it or cannot be read.
DECLARED: dict[str, DeclaredFlag] = {
    flag.name: flag
    for flag in (
        DeclaredFlag(
            name=WEBSOCKET_PUSH,
            default=True,
            description="an agent may connect to the WebSocket API and is pushed its notifications; "
            "off, its connect is refused (403) and it long-polls as before",
        ),
        DeclaredFlag(
            name=GATE_DENY_BLOCKING_RULES,
            default=True,
            description="the gate blocks a call a rule finds dangerous (rm -rf /, credentials sent out, ...); "
            "off for an agent, such a call is escalated to the experts instead (never approved)",
        ),
        DeclaredFlag(
            name=GATE_DENY_OUTSIDE_ROOTS,
            default=True,
            description="the gate blocks writes outside the allowed roots; off for an agent, they are "
            "escalated to the experts instead (never approved)",
        ),
        DeclaredFlag(
            name=DURABLE_RECOVERY,
            default=True,
            description="after a restart, the embedded cloud re-creates the waits (executions) the event log "
            "says were running; off, they stay failed until resumed by hand",
        ),
    )
}
ROLLOUT_RULE = "rollout"
ROLLOUT_BASE = 100
FLAGS_STREAM = "flags#document"


def agent_hash(flag: str, agent_id: str) -> int:
    """A stable number per (flag, agent): MODULO_RANGE over it picks a share of agents. Salted with the
    flag's name, so the first 10 % of one rollout are not always the first 10 % of every other."""
    return int.from_bytes(hashlib.sha256(f"{flag}\x00{agent_id}".encode()).digest()[:8], "big")


def context(flag: str, agent_id: str, role: str) -> dict[str, Any]:
    """What a flag's conditions may key on (models.ContextKey)."""
    return {"agent_id": agent_id, "role": role, "agent_hash": agent_hash(flag, agent_id)}


def schema() -> dict[str, Any]:
    """The JSON Schema of the flags document (schemas/flags.json)."""
    body = FlagsDocument.model_json_schema()
    body["propertyNames"] = {"pattern": FLAG_NAME}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://lighthouse.local/schemas/flags.json",
        "title": "Lighthouse feature flags (AWS Lambda Powertools feature-flag schema)",
        **{key: value for key, value in body.items() if key != "title"},
    }


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def validated(document: Any) -> dict[str, Any]:
    """The document if it matches the JSON Schema and Powertools' own rules, else ValidationFailed
    listing every violation with its JSON path."""
    violations = sorted(
        (
            {"path": "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path),
             "message": error.message}
            for error in _validator().iter_errors(document)
        ),
        key=lambda violation: (violation["path"], violation["message"]),
    )[:20]  # fmt: skip
    if violations:
        raise ValidationFailed("the flags document does not match schemas/flags.json", {"violations": violations})
    parsed: dict[str, Any] = FlagsDocument.model_validate(document).model_dump(mode="json")
    for flag in parsed.values():
        if not flag["rules"]:
            del flag["rules"]  # (Powertools warns about an empty rules map)
    try:
        if parsed:  # (Powertools warns about an empty document)
            SchemaValidator(parsed).validate()
    except SchemaValidationError as error:
        raise ValidationFailed(f"the flags document is not a valid Powertools schema: {error}") from error
    return parsed


def changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Names of the flags added, removed or redefined."""
    names = set(before) | set(after)
    return sorted(
        name
        for name in names
        if json.dumps(before.get(name), sort_keys=True) != json.dumps(after.get(name), sort_keys=True)
    )


def with_rollout(document: dict[str, Any], flag: str, percent: int) -> dict[str, Any]:
    """The document with `flag` on for `percent` % of agents (by agent_hash), its other rules kept.

    The rollout rule matches buckets 0..percent-1 of 100: raising the percentage only adds buckets,
    so an agent the flag is on for stays on."""
    current = dict(document.get(flag) or {"default": DECLARED[flag].default if flag in DECLARED else False})
    rules = {name: rule for name, rule in (current.get("rules") or {}).items() if name != ROLLOUT_RULE}
    if 0 < percent < 100:
        current["default"] = False
        condition = {
            "action": "MODULO_RANGE",
            "key": "agent_hash",
            "value": {"BASE": ROLLOUT_BASE, "START": 0, "END": percent - 1},
        }
        rules[ROLLOUT_RULE] = {"when_match": True, "conditions": [condition]}
    else:
        current["default"] = percent == 100
    if rules:
        current["rules"] = rules
    else:  # (Powertools warns about an empty rules map)
        current.pop("rules", None)
    return {**document, flag: current}
