"""Helpers several test layers share: a signed session body, and racing appenders."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from lighthouse.auth.keys import sign_session_request
from lighthouse.errors import ConcurrencyError
from lighthouse.events import EventStore
from tests.events_for_tests import Written


def signed_session_body(agent_id: str, secret: str) -> dict[str, Any]:
    """The body of POST /sessions, as an agent builds it."""
    timestamp, nonce = int(time.time()), secrets.token_hex(16)
    return {
        "agent_id": agent_id,
        "timestamp": timestamp,
        "nonce": nonce,
        "signature": sign_session_request(secret, agent_id, timestamp, nonce),
    }


def race_appenders(store: EventStore, stream_id: str, writers: int) -> list[int]:
    """Start `writers` threads that each append one event, retrying on conflict; returns who landed."""
    landed: list[int] = []
    lock = threading.Lock()

    def append_until_it_lands(writer: int) -> None:
        while True:
            try:
                store.append(stream_id, [Written(writer=writer)], store.current_version(stream_id))
            except ConcurrencyError:
                continue
            with lock:
                landed.append(writer)
            return

    threads = [threading.Thread(target=append_until_it_lands, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return landed


def api_app(**settings: Any) -> Any:
    """The API's Chalice app composed as its function composes it, from settings given here (the
    rest from the environment) over the in-process emulator."""
    from lighthouse.aws import AwsClients
    from lighthouse.composition import Components
    from lighthouse.config import Settings
    from lighthouse_tools.openapi import load_api_module

    module = load_api_module()
    root = module.compose(Components(Settings(**settings), AwsClients()))
    return module.create_app(lambda: root)
