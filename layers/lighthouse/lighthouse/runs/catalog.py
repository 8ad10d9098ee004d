"""What ships with Lighthouse: the three job templates and the D1 (built-in) directives."""

from __future__ import annotations

from typing import Any

from lighthouse.errors import NotFound
from lighthouse.runs.models import Directive, JobTemplate

_STRINGS = {"type": "array", "items": {"type": "string", "maxLength": 500}, "maxItems": 50}

LOG_TRIAGE_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["summary", "findings"],
    "properties": {
        "summary": {"type": "string", "maxLength": 4000},
        "findings": {
            "type": "array",
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["container", "severity", "error", "count", "likely_cause"],
                "properties": {
                    "container": {"type": "string"},
                    "severity": {"enum": ["info", "warning", "error", "critical"]},
                    "error": {"type": "string", "maxLength": 500},
                    "count": {"type": "integer", "minimum": 0},
                    "likely_cause": {"type": "string", "maxLength": 1000},
                },
            },
        },
        "next_steps": _STRINGS,
    },
}

GPU_REPORT_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["summary", "gpus", "anomalies"],
    "properties": {
        "summary": {"type": "string", "maxLength": 4000},
        "gpus": {
            "type": "array",
            "maxItems": 500,
            "items": {
                "type": "object",
                "required": ["agent_id", "index", "name", "utilization_percent", "memory_used_mib", "temperature_c"],
                "properties": {
                    "agent_id": {"type": "string"},
                    "index": {"type": "integer"},
                    "name": {"type": "string"},
                    "utilization_percent": {"type": "number"},
                    "memory_used_mib": {"type": "number"},
                    "memory_total_mib": {"type": "number"},
                    "temperature_c": {"type": "number"},
                },
            },
        },
        "anomalies": _STRINGS,
    },
}

SERVICE_MAP_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["summary", "services", "dependencies"],
    "properties": {
        "summary": {"type": "string", "maxLength": 4000},
        "services": {
            "type": "array",
            "maxItems": 1000,
            "items": {
                "type": "object",
                "required": ["name", "agent_id", "image", "ports"],
                "properties": {
                    "name": {"type": "string"},
                    "agent_id": {"type": "string"},
                    "image": {"type": "string"},
                    "ports": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "dependencies": {
            "type": "array",
            "maxItems": 2000,
            "items": {
                "type": "object",
                "required": ["from", "to", "via"],
                "properties": {"from": {"type": "string"}, "to": {"type": "string"}, "via": {"type": "string"}},
            },
        },
    },
}

_SINCE = {"type": "integer", "minimum": 60, "maximum": 7 * 86400, "description": "seconds of logs to read"}
_LINES = {"type": "integer", "minimum": 10, "maximum": 5000, "description": "at most this many lines a container"}
_TEMP = {"type": "number", "minimum": 30, "maximum": 120}
_UTIL = {"type": "number", "minimum": 0, "maximum": 100}

TEMPLATES: dict[str, JobTemplate] = {
    "log_triage": JobTemplate(
        task_key="log_triage",
        version=1,
        title="Log triage",
        description="Collect recent logs of allowlisted containers; summarise their errors and likely causes.",
        collects="logs",
        targets="containers",
        parameters={"since_seconds": 3600, "max_lines": 1000},
        parameters_schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {"since_seconds": _SINCE, "max_lines": _LINES},
        },
        output_schema=LOG_TRIAGE_OUTPUT,
        artifacts=["triage.json", "triage.md"],
    ),
    "gpu_report": JobTemplate(
        task_key="gpu_report",
        version=1,
        title="GPU report",
        description="Collect GPU utilisation, memory and temperature where agents report them; flag anomalies.",
        collects="gpu",
        targets="agents",
        parameters={"max_temperature_c": 85, "idle_utilization_percent": 5},
        parameters_schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {"max_temperature_c": _TEMP, "idle_utilization_percent": _UTIL},
        },
        output_schema=GPU_REPORT_OUTPUT,
        artifacts=["gpus.json", "gpus.md"],
    ),
    "service_map": JobTemplate(
        task_key="service_map",
        version=1,
        title="Service map",
        description="Map services, ports and dependencies from the fleet's inventory snapshots (JSON and Mermaid).",
        collects="inventory",
        targets="agents",
        parameters={"include_stopped": False},
        parameters_schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {"include_stopped": {"type": "boolean"}},
        },
        output_schema=SERVICE_MAP_OUTPUT,
        artifacts=["service_map.json", "service_map.mmd"],
    ),
}


def template(task_key: str, schedules: dict[str, str] | None = None) -> JobTemplate:
    found = TEMPLATES.get(task_key)
    if found is None:
        raise NotFound(f"no job template {task_key!r}; known: {', '.join(sorted(TEMPLATES))}")
    schedule = (schedules or {}).get(task_key)
    return found.model_copy(update={"schedule": schedule}) if schedule else found


BUILT_IN_AT = 1_767_225_600.0  # 2026-01-01: when the D1 directives' version 1 shipped

D1_DIRECTIVES: dict[str, Directive] = {
    "default": Directive(
        directive_id="default",
        type="D1",
        version=1,
        name="Lighthouse defaults",
        goals=["Find what needs an operator's attention first", "Explain likely causes, not only symptoms"],
        constraints=["Never include secrets, tokens or personal data", "Say when the data is insufficient"],
        output_style="concise bullet points, most severe first",
        updated_at=BUILT_IN_AT,
        updated_by="lighthouse",
    ),
    "thorough": Directive(
        directive_id="thorough",
        type="D1",
        version=1,
        name="Thorough review",
        goals=["Cover every finding, including minor ones", "Propose a next step for each finding"],
        constraints=["Never include secrets, tokens or personal data"],
        output_style="a section per target, then a prioritised list of next steps",
        updated_at=BUILT_IN_AT,
        updated_by="lighthouse",
    ),
}
