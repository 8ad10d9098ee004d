"""Run notifications: a finished run with a notify_url is queued (RunNotifyQueue); the notify
function POSTs it, signed (see `runs.webhooks`), and a failed delivery is retried from the queue with
a growing delay until the queue's DLQ takes it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests

from lighthouse.runs.models import FINAL_RUN_STATUSES, RunNotification, RunState
from lighthouse.runs.webhooks import SIGNATURE_HEADER, sign

TIMEOUT_SECONDS = 10
MAX_DELAY_SECONDS = 900


def notifier_of(sqs: Any, queue_url: str) -> Callable[[RunState], None]:
    """What the runner calls when a run ends: queue its notification if it asked for one."""

    def notify(state: RunState) -> None:
        if state.notify_url and queue_url:
            # One delivery id per run: a second finish (a retried step) is a replay to the receiver.
            body = {"run_id": state.run_id, "delivery_id": f"dlv-{state.run_id}"}
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))

    return notify


def finished_run(
    read_models: Any, notify: Callable[[RunState], None], emit_metrics: bool = True
) -> Callable[[RunState], None]:
    """What happens when a run has ended: its metrics are counted (once) and its notification queued."""
    from lighthouse.runs import metrics

    def finished(state: RunState) -> None:
        if state.status in FINAL_RUN_STATUSES:
            metrics.record(read_models, state, emit_metrics)
            notify(state)

    return finished


def notification(state: RunState, delivery_id: str) -> RunNotification:
    return RunNotification(
        run_id=state.run_id,
        status=state.status,
        jobs=[{"job": j.job, "status": j.status, "error": j.error} for j in state.jobs],
        error=state.error,
        ended_at=state.ended_at,
        delivery_id=delivery_id,
    )


class DeliveryFailed(Exception):
    pass


def deliver(url: str, payload: RunNotification, key: bytes, now: float, session: Any = requests) -> int:
    """POST the signed notification; the receiver's status, or DeliveryFailed (to be retried)."""
    body = payload.model_dump_json().encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(key, body, int(now))}
    try:
        response = session.post(url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False)
    except requests.RequestException as error:
        raise DeliveryFailed(f"{type(error).__name__} posting to the notify_url") from error
    if response.status_code >= 300:
        raise DeliveryFailed(f"the notify_url answered HTTP {response.status_code}")
    return int(response.status_code)


def retry_delay(receive_count: int) -> int:
    """Seconds before the next try: 10, 20, 40, ... capped at 15 minutes."""
    return int(min(MAX_DELAY_SECONDS, 10 * 2 ** max(0, receive_count - 1)))
