"""What each job makes of its collected data: a deterministic draft (what the scripted provider
answers, and what a real model is given as a starting point), the prompt, and the artifacts.

Pure functions: the job runner (`runs.jobs`) collects, asks the model and stores.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from lighthouse.providers import Message
from lighthouse.runs.models import Directive, JobTemplate

MAX_PROMPT_DATA_CHARS = 24_000
MAX_FINDINGS_PER_CONTAINER = 10

_LEVEL = re.compile(r"\b(CRITICAL|FATAL|PANIC|ERROR|ERR|EXCEPTION|TRACEBACK|WARN(?:ING)?)\b", re.IGNORECASE)
_TIMESTAMP = re.compile(r"^\S*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?\s*")
_VARIABLE = re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{8,}\b|\d+(?:\.\d+)*", re.IGNORECASE)
_CAUSES: tuple[tuple[str, str], ...] = (
    (r"connection refused|econnrefused", "a dependency is down or not listening on the expected port"),
    (r"timed? ?out|timeout|deadline exceeded", "a dependency is slow or unreachable (network, load or DNS)"),
    (r"out of memory|oom|cannot allocate memory", "the container hits its memory limit"),
    (r"permission denied|eacces|forbidden|unauthori[sz]ed", "missing permissions or invalid credentials"),
    (r"no such file|not found|enoent", "a file, path or resource the service expects is missing"),
    (r"certificate|x509|tls|ssl", "a TLS certificate is invalid, expired or not trusted"),
    (r"disk|no space left|enospc", "the disk or volume is full"),
    (r"too many open files|emfile", "the file descriptor limit is too low"),
)


def _severity(level: str) -> str:
    level = level.upper()
    if level in ("CRITICAL", "FATAL", "PANIC"):
        return "critical"
    if level.startswith("WARN"):
        return "warning"
    return "error"


def likely_cause(message: str) -> str:
    for pattern, cause in _CAUSES:
        if re.search(pattern, message, re.IGNORECASE):
            return cause
    return "not recognised: read the first occurrence in the collected log"


def triage_draft(logs: Mapping[str, str]) -> dict[str, Any]:
    """Group each container's error and warning lines by their shape (numbers and ids masked)."""
    findings: list[dict[str, Any]] = []
    for container, text in sorted(logs.items()):
        shapes: Counter[tuple[str, str]] = Counter()
        first: dict[tuple[str, str], str] = {}  # (severity, shape) -> its first message
        for line in text.splitlines():
            found = _LEVEL.search(line)
            if not found:
                continue
            message = _TIMESTAMP.sub("", line).strip()[:300]
            shape = (_severity(found.group(1)), _VARIABLE.sub("#", message))
            shapes[shape] += 1
            first.setdefault(shape, message)
        for (severity, masked), count in shapes.most_common(MAX_FINDINGS_PER_CONTAINER):
            message = first[(severity, masked)]
            findings.append(
                {"container": container, "severity": severity, "error": message, "count": count,
                 "likely_cause": likely_cause(message)}
            )  # fmt: skip
    order = {"critical": 0, "error": 1, "warning": 2, "info": 3}
    findings.sort(key=lambda f: (order[f["severity"]], -f["count"]))
    errors = sum(f["count"] for f in findings if f["severity"] != "warning")
    summary = (
        f"{len(logs)} container(s) read; {errors} error line(s) in {len(findings)} distinct finding(s)"
        if findings
        else f"{len(logs)} container(s) read; no errors or warnings"
    )
    steps = sorted({f"{f['container']}: check why {f['likely_cause']}" for f in findings[:5]})
    return {"summary": summary, "findings": findings, "next_steps": steps}


def gpu_anomalies(agent_id: str, gpu: dict[str, Any], max_temperature_c: float, idle_percent: float) -> list[str]:
    found: list[str] = []
    name = f"{agent_id} GPU {gpu.get('index')} ({gpu.get('name')})"
    if float(gpu.get("temperature_c", 0)) > max_temperature_c:
        found.append(f"{name} runs at {gpu['temperature_c']} C, above {max_temperature_c} C")
    used, total = float(gpu.get("memory_used_mib", 0)), float(gpu.get("memory_total_mib", 0) or 0)
    if float(gpu.get("utilization_percent", 0)) < idle_percent and used > 0:
        found.append(f"{name} holds {used:.0f} MiB but is idle ({gpu.get('utilization_percent')} %)")
    if total and used / total > 0.95:
        found.append(f"{name} memory is {100 * used / total:.0f} % full")
    return found


def gpu_draft(reports: Mapping[str, dict[str, Any]], max_temperature_c: float, idle_percent: float) -> dict[str, Any]:
    gpus: list[dict[str, Any]] = []
    anomalies: list[str] = []
    for agent_id, report in sorted(reports.items()):
        for gpu in report.get("gpus") or []:
            gpus.append({"agent_id": agent_id, **{k: gpu[k] for k in _GPU_FIELDS if k in gpu}})
            anomalies += gpu_anomalies(agent_id, gpu, max_temperature_c, idle_percent)
        if report.get("error"):
            anomalies.append(f"{agent_id}: {report['error']}")
    summary = (
        f"{len(gpus)} GPU(s) on {len(reports)} agent(s); {len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'}"
    )
    return {"summary": summary, "gpus": gpus, "anomalies": anomalies}


_GPU_FIELDS = ("index", "name", "utilization_percent", "memory_used_mib", "memory_total_mib", "temperature_c")


def _ports(container: dict[str, Any]) -> list[str]:
    shown = []
    for port in container.get("ports") or []:
        private, kind = port.get("PrivatePort") or port.get("private"), port.get("Type") or port.get("type", "tcp")
        public = port.get("PublicPort") or port.get("public")
        shown.append(f"{public}->{private}/{kind}" if public else f"{private}/{kind}")
    return sorted(set(shown))


def service_map_draft(inventories: Mapping[str, list[dict[str, Any]]], include_stopped: bool) -> dict[str, Any]:
    """Services from containers; dependencies from compose's depends_on label or lighthouse.depends_on."""
    services: list[dict[str, Any]] = []
    dependencies: list[dict[str, Any]] = []
    for agent_id, containers in sorted(inventories.items()):
        for container in sorted(containers, key=lambda c: str(c.get("name"))):
            if not include_stopped and container.get("state") not in ("running", None):
                continue
            labels = container.get("labels") or {}
            name = str(labels.get("com.docker.compose.service") or container.get("name") or container.get("id"))
            services.append({"name": name, "agent_id": agent_id, "image": str(container.get("image", "")),
                             "ports": _ports(container)})  # fmt: skip
            for target, via in _depends_on(labels):
                dependencies.append({"from": name, "to": target, "via": via})
    summary = f"{len(services)} service(s) on {len(inventories)} agent(s), {len(dependencies)} dependenc(ies)"
    return {"summary": summary, "services": services, "dependencies": dependencies}


def _depends_on(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for entry in str(labels.get("com.docker.compose.depends_on", "")).split(","):
        if entry.strip():
            found.append((entry.split(":", 1)[0].strip(), "compose depends_on"))
    for entry in str(labels.get("lighthouse.depends_on", "")).split(","):
        if entry.strip():
            found.append((entry.strip(), "lighthouse.depends_on label"))
    return found


def mermaid(service_map: dict[str, Any]) -> str:
    def node(name: str) -> str:
        return re.sub(r"[^A-Za-z0-9_]", "_", name) or "_"

    lines = ["graph LR"]
    for service in service_map.get("services", []):
        ports = ", ".join(service.get("ports", []))
        label = f"{service['name']}<br/>{service.get('image', '')}" + (f"<br/>{ports}" if ports else "")
        lines.append(f'    {node(service["name"])}["{label.replace(chr(34), "")}"]')
    for edge in service_map.get("dependencies", []):
        lines.append(f"    {node(edge['from'])} -->|{edge['via']}| {node(edge['to'])}")
    return "\n".join(lines) + "\n"


def markdown(template: JobTemplate, result: dict[str, Any]) -> str:
    lines = [f"# {template.title}", "", str(result.get("summary", "")), ""]
    for finding in result.get("findings", []):
        lines.append(
            f"- **{finding['severity']}** {finding['container']}: {finding['error']} "
            f"(x{finding['count']}) — likely: {finding['likely_cause']}"
        )
    for anomaly in result.get("anomalies", []):
        lines.append(f"- {anomaly}")
    if result.get("next_steps"):
        lines += ["", "## Next steps", *[f"- {step}" for step in result["next_steps"]]]
    return "\n".join(lines) + "\n"


def prompt(template: JobTemplate, directive: Directive, data: str, draft: dict[str, Any]) -> list[Message]:
    """The directive as the system message; the job, its data (bounded) and the draft as the user's."""
    system = "\n".join(
        [
            f"You are Lighthouse's {template.title.lower()} analyst. Directive: {directive.name}.",
            "Goals:", *[f"- {goal}" for goal in directive.goals],
            "Constraints:", *[f"- {constraint}" for constraint in directive.constraints],
            f"Output style: {directive.output_style}.",
            "Answer with one JSON object matching this schema, and nothing else:",
            json.dumps(template.output_schema, sort_keys=True),
        ]
    )  # fmt: skip
    user = "\n".join(
        [
            template.description,
            "Collected data:",
            data[:MAX_PROMPT_DATA_CHARS],
            "A mechanical first pass (correct it where the data says otherwise):",
            json.dumps(draft, sort_keys=True)[:MAX_PROMPT_DATA_CHARS],
        ]
    )
    return [Message("system", system), Message("user", user)]


def project(value: Any, schema: dict[str, Any]) -> Any:
    """Only what the schema names: a model's extra keys (its musings) are not stored."""
    if isinstance(value, dict) and "properties" in schema:
        return {k: project(v, schema["properties"][k]) for k, v in value.items() if k in schema["properties"]}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [project(item, schema["items"]) for item in value]
    return value
