"""The LLM calls ledger: every call's tokens, cost and latency, and who made it — never its content.

Prices come from `genai-prices` (pinned; offline: its data ships in the package), with per-model
overrides from configuration. Each call is one transaction: the entry (conditional: a repeat with
the same call id counts nothing) and the day's pre-aggregates by model, provider, run, directive
and agent (ADD), so the reports read a handful of aggregate items, never the entries.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from botocore.exceptions import ClientError

from lighthouse.errors import ValidationFailed
from lighthouse.runs.models import (
    CostReport,
    LedgerEntry,
    TokenStats,
    UsageByDirective,
    UsageRow,
)

USAGE_MODEL = "llm-usage"
ENTRIES_MODEL = "llm-ledger"
NANO = 1_000_000_000  # costs are added up as integer nano-dollars
FREE_PROVIDERS = ("scripted", "ollama")  # no per-token price: a local or canned model
_GENAI_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "bedrock": "aws"}
Dimension = Literal["day", "model", "provider", "run", "directive", "agent"]
MAX_WINDOW_DAYS = 366


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float = 0.0


class Prices:
    def __init__(self, overrides: dict[str, Price] | None = None) -> None:
        self._overrides = overrides or {}

    @classmethod
    def from_json(cls, text: str) -> Prices:
        """`{"model": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}` (the deployment's overrides)."""
        if not text.strip():
            return cls()
        try:
            raw = json.loads(text)
            return cls({model: Price(**price) for model, price in raw.items()})
        except (ValueError, TypeError) as error:
            raise ValidationFailed(f"LIGHTHOUSE_LLM_PRICE_OVERRIDES is not valid: {error}") from error

    def cost(
        self, provider: str, model: str, input_tokens: int, output_tokens: int, cache_read: int = 0
    ) -> tuple[float, bool]:
        """(USD, priced). A model no price is known for costs 0 and is marked unpriced."""
        override = self._overrides.get(model)
        if override is not None:
            total = (
                (input_tokens - cache_read) * override.input_per_mtok
                + cache_read * override.cache_read_per_mtok
                + output_tokens * override.output_per_mtok
            ) / 1_000_000
            return round(total, 9), True
        if provider in FREE_PROVIDERS:
            return 0.0, True
        from genai_prices import Usage, calc_price

        try:
            priced = calc_price(
                Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cache_read or None),
                model_ref=model,
                provider_id=_GENAI_PROVIDER.get(provider, provider),
            )
        except LookupError:
            return 0.0, False
        return float(Decimal(priced.total_price).quantize(Decimal("0.000000001"))), True


@dataclass(frozen=True)
class Who:
    run_id: str | None = None
    job: str | None = None
    task_id: str | None = None
    agent_id: str | None = None
    directive: str | None = None


def day_of(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d")


def parse_instant(value: str, name: str) -> float:
    """ISO-8601 (a date, or a date and time; UTC unless it says otherwise) or Unix seconds."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise ValidationFailed(
            f"{name} must be ISO-8601 or Unix seconds, not {value[:40]!r}", {"fields": [{"path": name}]}
        ) from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def window(since: str | None, until: str | None, now: float, default_days: int = 30) -> tuple[str, str]:
    """The whole UTC days [since, until] covers (the aggregates are daily)."""
    end = parse_instant(until, "until") if until else now
    start = parse_instant(since, "since") if since else end - default_days * 86400
    if start > end:
        raise ValidationFailed("since is after until", {"fields": [{"path": "since"}]})
    if end - start > MAX_WINDOW_DAYS * 86400:
        raise ValidationFailed(f"the window may span at most {MAX_WINDOW_DAYS} days")
    return day_of(start), day_of(end)


class LlmLedger:
    def __init__(self, client: Any, table: str, prices: Prices, now: Callable[[], float]) -> None:
        self._client = client
        self._table = table
        self.prices = prices
        self._now = now

    def record_call(
        self,
        source: Literal["pipeline", "validation", "run"],
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        latency_ms: float,
        who: Who,
        cache_read_tokens: int = 0,
    ) -> LedgerEntry:
        cost, priced = self.prices.cost(provider, model, input_tokens, output_tokens, cache_read_tokens)
        entry = LedgerEntry(
            call_id=f"llm-{uuid.uuid4().hex}", at=self._now(), source=source, provider=provider, model=model,
            input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cache_read_tokens,
            cost_usd=cost, priced=priced, latency_ms=round(latency_ms, 3), run_id=who.run_id, job=who.job,
            task_id=who.task_id, agent_id=who.agent_id, directive=who.directive,
        )  # fmt: skip
        self.record(entry)
        return entry

    def record(self, entry: LedgerEntry) -> bool:
        """Store the entry and add it to the day's aggregates; False if this call id was recorded."""
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": entry_item(entry),
                    "ConditionExpression": "attribute_not_exists(#k)",
                    "ExpressionAttributeNames": {"#k": "key"},
                }
            }
        ]
        for (partition, key), counters in increments(entry).items():
            actions.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"model": {"S": partition}, "key": {"S": key}},
                        "UpdateExpression": "ADD " + ", ".join(f"c_{name} :{name}" for name in counters),
                        "ExpressionAttributeValues": {f":{name}": {"N": str(v)} for name, v in counters.items()},
                    }
                }
            )
        try:
            self._client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            reasons = error.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise
        return True

    # ---- reports --------------------------------------------------------------------------------

    def _rows(self, dimension: Dimension, first_day: str, last_day: str, by_day: bool = False) -> list[UsageRow]:
        """The dimension's daily aggregates over the window (one range query per month it spans),
        added up per value (or per day)."""
        totals: dict[str, dict[str, int]] = {}
        for month in months(first_day, last_day):
            for item in self._query(f"{USAGE_MODEL}#{dimension}#{month}", f"{first_day}#", f"{last_day}#\uffff"):
                day, value = item["key"]["S"].split("#", 1)
                row = totals.setdefault(day if by_day else value, {})
                for name, number in item.items():
                    if name.startswith("c_"):
                        row[name[2:]] = row.get(name[2:], 0) + int(number["N"])
        rows = [_row(key, counters) for key, counters in totals.items()]
        return sorted(rows, key=lambda r: r.key) if by_day else sorted(rows, key=lambda r: (-r.cost_usd, r.key))

    def _query(self, partition: str, low: str, high: str) -> Iterable[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#m = :m AND #k BETWEEN :a AND :b",
            "ExpressionAttributeNames": {"#m": "model", "#k": "key"},
            "ExpressionAttributeValues": {":m": {"S": partition}, ":a": {"S": low}, ":b": {"S": high}},
        }
        while True:
            page = self._client.query(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def token_stats(self, since: str | None, until: str | None) -> TokenStats:
        first, last = window(since, until, self._now())
        return TokenStats(
            since=first, until=last, by_model=self._rows("model", first, last),
            by_provider=self._rows("provider", first, last), by_day=self._rows("day", first, last, by_day=True),
        )  # fmt: skip

    def cost_report(self, since: str | None, until: str | None) -> CostReport:
        first, last = window(since, until, self._now())
        total = sum(row.cost_usd for row in self._rows("day", first, last, by_day=True))
        return CostReport(
            since=first, until=last, total_usd=round(total, 9), by_model=self._rows("model", first, last),
            by_run=self._rows("run", first, last), by_directive=self._rows("directive", first, last),
            by_agent=self._rows("agent", first, last),
        )  # fmt: skip

    def usage_by_directive(self, since: str | None, until: str | None) -> UsageByDirective:
        first, last = window(since, until, self._now())
        return UsageByDirective(since=first, until=last, directives=self._rows("directive", first, last))

    def entries(self, day: str) -> Iterable[LedgerEntry]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#m = :m",
            "ExpressionAttributeNames": {"#m": "model"},
            "ExpressionAttributeValues": {":m": {"S": f"{ENTRIES_MODEL}#{day}"}},
        }
        while True:
            page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                yield LedgerEntry.model_validate_json(item["doc"]["S"])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def entry_item(entry: LedgerEntry) -> dict[str, Any]:
    """The entry's item: partition `llm-ledger#<day>`, key `<at>#<call id>`."""
    return {
        "model": {"S": f"{ENTRIES_MODEL}#{day_of(entry.at)}"},
        "key": {"S": f"{entry.at:017.6f}#{entry.call_id}"},
        "revision": {"N": "1"},
        "doc": {"S": entry.model_dump_json()},
    }


def increments(entry: LedgerEntry) -> dict[tuple[str, str], dict[str, int]]:
    """What the entry adds to each daily aggregate: (partition `llm-usage#<dimension>#<month>`, key
    `<day>#<value>`). A month per partition keeps each report's queries to the items it adds up."""
    day = day_of(entry.at)
    counters = {
        "calls": 1,
        "input": entry.input_tokens,
        "output": entry.output_tokens,
        "cache": entry.cache_read_tokens + entry.cache_write_tokens,
        "cost_nano": round(entry.cost_usd * NANO),
    }
    dimensions: list[tuple[Dimension, str | None]] = [
        ("day", "all"), ("model", f"{entry.provider}/{entry.model}"), ("provider", entry.provider),
        ("run", entry.run_id), ("directive", entry.directive), ("agent", entry.agent_id),
    ]  # fmt: skip
    month = day[:7]
    return {
        (f"{USAGE_MODEL}#{dimension}#{month}", f"{day}#{value}"): counters
        for dimension, value in dimensions
        if value is not None
    }


def months(first_day: str, last_day: str) -> list[str]:
    """Every YYYY-MM from the first day's month to the last's."""
    year, month = int(first_day[:4]), int(first_day[5:7])
    found = []
    while f"{year:04d}-{month:02d}" <= last_day[:7]:
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def _row(key: str, counters: dict[str, int]) -> UsageRow:
    return UsageRow(
        key=key,
        calls=counters.get("calls", 0),
        input_tokens=counters.get("input", 0),
        output_tokens=counters.get("output", 0),
        cache_tokens=counters.get("cache", 0),
        cost_usd=round(counters.get("cost_nano", 0) / NANO, 9),
    )
