"""Powertools' logger, metrics (EMF) and tracer around every function's handler, and the metrics the
template's alarms and dashboard read that no AWS service publishes for us.

Namespace `Lighthouse`, one `service` dimension per function. Tracing is off outside Lambda, on the
embedded cloud (no X-Ray daemon; POWERTOOLS_TRACE_DISABLED) and on the emulators (the template's
XRayTracing parameter); metrics are off on the embedded cloud (POWERTOOLS_METRICS_DISABLED).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from lighthouse.events.model import StoredEvent

NAMESPACE = "Lighthouse"
H = TypeVar("H", bound=Callable[..., Any])
# Most invocations add no metric of their own (only the counted events do): not worth a warning each.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def instrumented(logger: Logger, handler: H) -> H:
    """`handler` with the Lambda context on every log line, its metrics flushed as EMF at the end of
    each invocation (and a ColdStart metric), and an X-Ray subsegment when tracing is on."""
    service = logger.service
    metrics = Metrics(namespace=NAMESPACE, service=service)
    tracer = Tracer(service=service)
    logged = logger.inject_lambda_context(handler)
    # Powertools writes the cold-start metric even when metrics are disabled (the embedded cloud).
    measured = metrics.log_metrics(logged, capture_cold_start_metric=not is_metrics_disabled())
    return tracer.capture_lambda_handler(measured)  # type: ignore[return-value]


def event_metrics(event: StoredEvent) -> Iterable[tuple[str, float, MetricUnit]]:
    """The figures one stored event adds (the projector sees every event once per stream record)."""
    kind, body = event.type, event.event
    if kind == "ELICITATION_REQUESTED":
        yield "ElicitationRequested", 1, MetricUnit.Count
    elif kind == "ELICITATION_EXPIRED":
        yield "ElicitationExpired", 1, MetricUnit.Count
    elif kind == "VALIDATION_COMPLETED":
        latency_ms = max(0.0, (float(body.at) - float(body.requested_at)) * 1000)  # type: ignore[attr-defined]
        yield "GateDecisionLatency", latency_ms, MetricUnit.Milliseconds


def record_event_metrics(metrics: Metrics, event: StoredEvent) -> None:
    for name, value, unit in event_metrics(event):
        metrics.add_metric(name=name, unit=unit, value=value)


def metrics_for(logger: Logger) -> Metrics:
    """The function's metrics (Powertools keeps one set per namespace; `instrumented` flushes it)."""
    return Metrics(namespace=NAMESPACE, service=logger.service)
