"""`lighthouse watch` and `lighthouse flags` as a user runs them, against `lighthouse up`: a pushed
question printed as it arrives, and a rollout from 0 to 100 % switching push off and on."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import requests

from tests.e2e.conftest import LIGHTHOUSE, Platform, open_session, wait_for

pytestmark = pytest.mark.e2e
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


def register(platform: Platform, agent_id: str) -> str:
    added = platform.cli("agents", "add", agent_id, "--json")
    assert added.returncode == 0, added.stderr
    return str(json.loads(added.stdout)["secret"])


def watch(platform: Platform, agent_id: str, secret: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [LIGHTHOUSE, "--state-file", str(platform.state_file), "watch", "--agent-id", agent_id, *args],
        env={**os.environ, "LIGHTHOUSE_AGENT_SECRET": secret},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ask(platform: Platform, asker_token: str, target: str) -> str:
    created = requests.post(
        f"{platform.api_url}/elicitation/create",
        json={"to_agent": target, "message": "ok?", "schema": SCHEMA},
        headers={"Authorization": f"Bearer {asker_token}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["elicitation_id"])


def test_watch_prints_a_pushed_question_and_a_rollout_switches_push_off_and_on(platform: Platform) -> None:
    target_secret = register(platform, "watcher")
    asker_token = open_session(platform, "watch-asker", register(platform, "watch-asker"))
    # GIVEN `lighthouse watch` for the target, subscribed (its acknowledgement on stderr)
    watcher = watch(platform, "watcher", target_secret, "--count", "1")
    try:
        assert watcher.stderr is not None
        acknowledged = watcher.stderr.readline()
        assert json.loads(acknowledged)["type"] == "subscribed", acknowledged
        # WHEN the target is asked, THEN watch prints the envelope and stops after --count 1
        elicitation_id = ask(platform, asker_token, "watcher")
        out, _ = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    envelope = json.loads(out.splitlines()[0])
    assert envelope["type"] == "elicitation.requested"
    assert envelope["id"] == elicitation_id
    assert envelope["feed"] == "agent:watcher"

    # WHEN push is rolled out to 0 %, THEN watch is refused (403) within the flags' cache time
    assert platform.cli("flags", "rollout", "websocket_push", "0").returncode == 0
    try:

        def refused() -> bool:
            run = watch(platform, "watcher", target_secret, "--count", "1")
            try:
                _, err = run.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                run.kill()
                return False
            return run.returncode == 1 and "refused (403)" in err

        wait_for(refused, timeout=60)  # the flags' cache time, and cold starts on an emulator
        evaluated = platform.cli("flags", "evaluate", "websocket_push", "--agent", "watcher")
        assert json.loads(evaluated.stdout)["enabled"] is False
    finally:
        # AND at 100 % it connects again and resumes after the last seq it saw, missing nothing
        assert platform.cli("flags", "rollout", "websocket_push", "100").returncode == 0
    missed = ask(platform, asker_token, "watcher")
    time.sleep(0.5)

    def resumed() -> str | None:
        run = watch(platform, "watcher", target_secret, "--count", "1", "--since", str(envelope["seq"]))
        try:
            out, _ = run.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            run.kill()
            return None
        return out if run.returncode == 0 and out else None

    assert json.loads(str(wait_for(resumed, timeout=60)).splitlines()[0])["id"] == missed
