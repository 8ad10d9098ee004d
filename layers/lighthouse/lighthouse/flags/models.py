"""The flags document (Powertools' feature-flag schema), its change event and the API's views."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from lighthouse.events.types import Event

FLAG_NAME = r"^[a-z][a-z0-9_]{0,63}$"
RULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,127}$"
MAX_FLAGS = 200
MAX_RULES = 20
MAX_CONDITIONS = 10
# Powertools' condition actions (aws_lambda_powertools.utilities.feature_flags.schema.RuleAction).
Action = Literal[
    "EQUALS", "NOT_EQUALS", "KEY_GREATER_THAN_VALUE", "KEY_GREATER_THAN_OR_EQUAL_VALUE", "KEY_LESS_THAN_VALUE",
    "KEY_LESS_THAN_OR_EQUAL_VALUE", "STARTSWITH", "ENDSWITH", "IN", "NOT_IN", "KEY_IN_VALUE", "KEY_NOT_IN_VALUE",
    "VALUE_IN_KEY", "VALUE_NOT_IN_KEY", "ALL_IN_VALUE", "ANY_IN_VALUE", "NONE_IN_VALUE",
    "SCHEDULE_BETWEEN_TIME_RANGE", "SCHEDULE_BETWEEN_DATETIME_RANGE", "SCHEDULE_BETWEEN_DAYS_OF_WEEK", "MODULO_RANGE",
]  # fmt: skip
# The context every evaluation gets (lighthouse.flags.logic.context): what conditions may key on.
ContextKey = Literal["agent_id", "role", "agent_hash"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Condition(_Strict):
    action: Action
    key: ContextKey
    value: Any


class Rule(_Strict):
    when_match: bool = True
    conditions: list[Condition] = Field(min_length=1, max_length=MAX_CONDITIONS)


class Flag(_Strict):
    default: bool = Field(strict=True)
    rules: dict[str, Rule] = Field(default_factory=dict, max_length=MAX_RULES)


class FlagsDocument(RootModel[dict[str, Flag]]):
    """What AppConfig holds (and the event store, on the emulators): flag name -> flag."""

    root: dict[str, Flag] = Field(default_factory=dict, max_length=MAX_FLAGS)


class PutFlags(_Strict):
    flags: dict[str, Any] = Field(description="the whole flags document (schemas/flags.json)")
    expected_version: int | None = Field(
        default=None, ge=0, strict=True, description="refuse the change (409) unless the document is at this version"
    )


class Rollout(_Strict):
    percent: int = Field(ge=0, le=100, strict=True, description="share of agents (by a hash of their id) it is on for")


class DeclaredFlag(BaseModel):
    name: str
    default: bool
    description: str


class FlagsView(BaseModel):
    flags: dict[str, Any]
    version: int = Field(description="the document's version (0: never changed, the declared defaults apply)")
    changed_at: float | None = None
    changed_by: str | None = None
    store: Literal["appconfig", "events"]
    cache_seconds: float = Field(description="how long a function may use a value it read before reading again")
    declared: list[DeclaredFlag]


class FlagEvaluation(BaseModel):
    flag: str
    agent_id: str
    role: str
    enabled: bool


class FlagsChanged(Event):
    """The whole new document (so any version can be read back), who changed it, and what changed."""

    TYPE: ClassVar[str] = "FLAGS_CHANGED"

    document: dict[str, Any]
    changed: list[str]
    by: str
    at: float
