"""Every log line the platform writes goes through `redact`: API keys, tokens, passwords, bearer
headers, private keys and IP addresses are replaced by `[REDACTED:<kind>]`.

Powertools' logger takes a formatter: ours serializes as Powertools does, then redacts the line (the
replacements contain no quote or backslash, so a JSON line stays JSON). Redaction is on unless
LIGHTHOUSE_LOG_REDACTION=false, and turning it off is itself logged, as a warning, at start. The
patterns are written here because no library covers this set; each kind has a test.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from pydantic_settings import BaseSettings, SettingsConfigDict

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private-key", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----", re.S)),
    ("bearer", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}")),
    ("api-key", re.compile(r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}"
                           r"|gh[pousr]_[A-Za-z0-9]{30,}|xox[abpr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})\b")),
    ("token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]{8,})?")),
    ("password", re.compile(
        r"(?i)((?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret)"
        r"\\?[\"']?\s*[:=]\s*\\?[\"']?)([^\s\"'\\,;&}]{3,})"
    )),
    ("ipv4", re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")),
    ("ipv6", re.compile(r"(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
                        r"|(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{0,4}::(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{0,4})(?![\w:])")),
)  # fmt: skip


def redact(text: str) -> str:
    for kind, pattern in _PATTERNS:
        if kind == "password":
            text = pattern.sub(lambda m: f"{m.group(1)}[REDACTED:password]", text)
        else:
            text = pattern.sub(f"[REDACTED:{kind}]", text)
    return text


class RedactingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: Any) -> str:
        return redact(super().serialize(log))


class RedactingStdFormatter(logging.Formatter):
    """The same for the standard library's logging (agent-core, the local cloud's own lines)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIGHTHOUSE_", extra="ignore")

    log_redaction: bool = True


_warned: set[str] = set()


def logger(service: str) -> Logger:
    """A Powertools logger whose every line is redacted (unless the deployment turned that off)."""
    if LogSettings().log_redaction:
        return Logger(service=service, logger_formatter=RedactingFormatter())
    made = Logger(service=service)
    if service not in _warned:
        _warned.add(service)
        made.warning("log redaction is OFF (LIGHTHOUSE_LOG_REDACTION=false): secrets may reach the logs")
    return made
