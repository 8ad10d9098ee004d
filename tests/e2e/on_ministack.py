"""`make ministack-test`: deploy template.yaml to a fresh MiniStack exactly as to AWS, then run the
end-to-end suite against the deployed stack's API over HTTP.

    python -m tests.e2e.on_ministack [pytest arguments]

MiniStack and the SAM CLI run from their own pinned tool environments (`lighthouse_tools.tools`);
MiniStack listens on a free local port with its state in a scratch directory, so every run deploys
into an empty account. Writes `.lighthouse/ministack-test/summary.json` (deploy time, resources,
layer size, test counts) and exits with pytest's status (5, no tests collected, is a failure).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from lighthouse_tools import ministack
from lighthouse_tools.deploy import BUILD_DIR
from lighthouse_tools.template import PROJECT_ROOT

WORKDIR = PROJECT_ROOT / ".lighthouse" / "ministack-test"
LIGHTHOUSE = str(Path(sys.executable).parent / "lighthouse")


def directory_bytes(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file() and not file.is_symlink())


def deploy(endpoint: str, state_file: Path) -> tuple[float, int]:
    started = time.monotonic()
    with (WORKDIR / "deploy.log").open("w") as log:
        completed = subprocess.run(
            [LIGHTHOUSE, "--state-file", str(state_file), "deploy", "--endpoint", endpoint],
            stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, check=False,
        )  # fmt: skip
    output = (WORKDIR / "deploy.log").read_text()
    print(output[-1500:], flush=True)
    if completed.returncode != 0:
        raise SystemExit(f"the deploy to MiniStack failed (exit {completed.returncode}); see {WORKDIR / 'deploy.log'}")
    resources = re.search(r"Resources:\s+(\d+)", output)
    return time.monotonic() - started, int(resources.group(1)) if resources else 0


def run_suite(state_file: Path, pytest_args: list[str]) -> tuple[int, dict[str, int]]:
    state = json.loads(state_file.read_text())
    environment = {
        **os.environ,
        "LIGHTHOUSE_TARGET": "endpoint",
        "LIGHTHOUSE_STATE_FILE": str(state_file),
        "LIGHTHOUSE_API_URL": state["api_url"],
        "LIGHTHOUSE_AWS_ENDPOINT": state["aws_endpoint_url"],
    }
    report = WORKDIR / "junit.xml"
    command = [sys.executable, "-m", "pytest", "tests/e2e", "-p", "no:randomly", f"--junitxml={report}", *pytest_args]
    status = subprocess.run(command, env=environment, cwd=PROJECT_ROOT, check=False).returncode
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if report.exists():
        suite = re.search(r"<testsuite ([^>]*)>", report.read_text())
        for name in counts:
            found = re.search(rf'\b{name}="(\d+)"', suite.group(1)) if suite else None
            counts[name] = int(found.group(1)) if found else 0
    return status, counts


def main(argv: list[str]) -> int:
    WORKDIR.mkdir(parents=True, exist_ok=True)
    state_file = WORKDIR / "local.json"
    started = time.monotonic()
    with ministack.running(WORKDIR / "ministack.log") as endpoint:
        print(f"MiniStack on {endpoint} (log: {WORKDIR / 'ministack.log'})", flush=True)
        deploy_seconds, resources = deploy(endpoint, state_file)
        status, counts = run_suite(state_file, argv)
    summary = {
        "deploy_seconds": round(deploy_seconds, 1),
        "resources": resources,
        "layer_bytes": directory_bytes(BUILD_DIR / "LighthouseLayer"),
        "tests": counts,
        "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
        "pytest_status": status,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    (WORKDIR / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"ministack-test: {json.dumps(summary)}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
