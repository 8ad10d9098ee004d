"""Console benchmark (issue #19). Run with `make bench` (or `python -m tests.perf.bench_console`).

On the embedded cloud (in this process), in headless Chromium (Playwright, the system browser), each
sample in a fresh browser context (nothing cached):
1. First load: from navigation start to the console being interactive: the sign-in form ready to
   type into (signed out), and the overview's figures drawn (signed in: the session cookie set).
2. The execution page of a 100-state execution: from navigation start to all 100 states drawn with
   their statuses (the graph laid out by dagre), and the API's GET /executions/{arn} alone.
Goals: first load <= 1 s, the 100-state execution page <= 2 s. Figures beside a conditional PutItem
over HTTP measured in the same run. BENCH_QUICK=1 takes fewer samples.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from typing import Any

import requests
from playwright.sync_api import Browser, sync_playwright

from lighthouse_tools.localcloud.cloud import REGION, LocalCloud, LocalCloudOptions
from tests.helpers import signed_session_body
from tests.perf.stats import floor, summarize, write

QUICK = os.environ.get("BENCH_QUICK") == "1"
SAMPLES = 5 if QUICK else 20
STATES = 100
CHROMIUM = os.environ.get("LIGHTHOUSE_CHROMIUM", "/usr/bin/chromium")
# In-page: milliseconds from navigation start until `selector` matches (polled each frame).
READY_AFTER_NAVIGATION = """(selector) => new Promise(resolve => {
    const check = () => document.querySelectorAll(selector).length
        ? resolve(performance.now()) : requestAnimationFrame(check);
    check();
})"""


def hundred_state_execution(cloud: LocalCloud) -> str:
    """A finished execution of a 100-state machine (a chain of Pass states), as its ARN."""
    sfn = cloud.client("stepfunctions")
    states: dict[str, Any] = {
        f"Step{i:03d}": {"Type": "Pass", "Result": {"step": i}, "ResultPath": f"$.s{i}", "Next": f"Step{i + 1:03d}"}
        for i in range(STATES - 1)
    }
    states[f"Step{STATES - 1:03d}"] = {"Type": "Succeed"}
    machine = sfn.create_state_machine(
        name="bench-hundred-states",
        definition=json.dumps({"StartAt": "Step000", "States": states}),
        roleArn="arn:aws:iam::123456789012:role/bench",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name="bench-run", input="{}")["executionArn"]
    deadline = time.monotonic() + 120
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise RuntimeError("the 100-state execution did not finish in 120 s")
        time.sleep(0.2)
    return str(execution)


def first_loads(browser: Browser, url: str, cookie: dict[str, Any] | None, ready: str) -> list[float]:
    samples = []
    for _ in range(SAMPLES):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        if cookie:
            context.add_cookies([cookie])
        page = context.new_page()
        page.goto(url, wait_until="commit")
        samples.append(page.evaluate(READY_AFTER_NAVIGATION, ready))
        context.close()
    return samples


def main() -> None:
    options = LocalCloudOptions(aws_port=0, api_port=0, mqtt=False, start_schedules=False)
    with LocalCloud(options) as cloud, sync_playwright() as playwright:
        table = cloud.function_environment()["LIGHTHOUSE_EVENTS_TABLE"]
        floor_figures = floor(cloud.aws_endpoint_url, REGION, table)
        secret = cloud.components().agents.register("console-bench-admin", "admin").secret
        signed = requests.post(
            f"{cloud.api_url}/console/session", json=signed_session_body("console-bench-admin", secret), timeout=30
        )
        signed.raise_for_status()
        token = signed.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        cookie = {"name": "lighthouse_session", "value": token, "url": cloud.api_url}
        console = f"{cloud.api_url}/console"
        execution = hundred_state_execution(cloud)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        first_loads(browser, console, None, "#agent_id")  # warm the functions' containers
        signed_out = first_loads(browser, console, None, "#agent_id")
        signed_in = first_loads(browser, console, cookie, "table.figures tbody tr")
        page_url = f"{console}#/executions/{urllib.parse.quote(execution, safe='')}"
        drawn = f'g.state[data-status="succeeded"]:nth-of-type({STATES})'
        execution_page = first_loads(browser, page_url, cookie, drawn)
        http = requests.Session()
        http.cookies.set("lighthouse_session", token)
        csrf = signed.json()["csrf"]
        api_ms = []
        for _ in range(SAMPLES):
            began = time.perf_counter()
            answer = http.get(
                f"{cloud.api_url}/executions/{urllib.parse.quote(execution, safe='')}",
                headers={"X-Lighthouse-CSRF": csrf}, timeout=30,
            )  # fmt: skip
            api_ms.append((time.perf_counter() - began) * 1000)
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["nodes"]) == STATES
        browser.close()
    results = {
        "floor_put_item": floor_figures,
        "first_load_signed_out": summarize(signed_out),
        "first_load_signed_in_overview": summarize(signed_in),
        "execution_page_100_states": summarize(execution_page),
        "execution_api_100_states": summarize(api_ms),
    }
    results["goal"] = {
        "first_load_p50_ms": results["first_load_signed_in_overview"]["p50_ms"],
        "first_load_met": results["first_load_signed_in_overview"]["p95_ms"] <= 1000,
        "execution_page_p50_ms": results["execution_page_100_states"]["p50_ms"],
        "execution_page_met": results["execution_page_100_states"]["p95_ms"] <= 2000,
    }
    path = write("console", results)
    print(json.dumps(results, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
