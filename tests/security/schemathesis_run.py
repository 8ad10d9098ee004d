"""Schemathesis against the served OpenAPI document, as the test suite and `make fuzz` run it.

Two passes per credential: every operation but the Claude Code hook with the contract checks and
negative-data rejection, then the hook without negative-data rejection (it answers every request,
malformed ones included, with a 200 `deny`, because Claude Code runs the tool on any non-2xx).
`python -m tests.security.schemathesis_run --max-examples 200` starts its own local cloud and
prints the figures (operations, test cases, failures) as JSON.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ST = str(Path(sys.executable).parent / "st")
CONFIG = str(Path(__file__).with_name("schemathesis.toml"))
HOOK_PATH = "/hooks/claude-code/pre-tool-use"
CONTRACT_CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "ignored_auth",
    "no_credential_echo",
]


def _pass(
    api_url: str, token: str, max_examples: int, checks: list[str], filters: list[str], seed: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as report_dir:
        command = [
            ST, "--config-file", CONFIG, "run", f"{api_url}/openapi.json", "-H", f"Authorization: Bearer {token}",
            "-n", str(max_examples), "--seed", str(seed), "--checks", ",".join(checks),
            "--phases", "examples,coverage,fuzzing", "--workers", "1", "--no-color",
            "--generation-database", "none", "--report", "json", "--report-dir", report_dir, *filters,
        ]  # fmt: skip
        environment = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.security.st_hooks"}
        completed = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=1800, check=False)
        reports = glob.glob(f"{report_dir}/*.json")
        if not reports:
            raise RuntimeError(f"schemathesis wrote no report: {completed.stdout[-3000:]}{completed.stderr[-3000:]}")
        report: dict[str, Any] = json.loads(Path(reports[0]).read_text())
    report["output_tail"] = completed.stdout[-6000:]
    return report


def run(api_url: str, tokens: dict[str, str], max_examples: int, seed: int = 20261129) -> dict[str, Any]:
    """{operations (tested under every credential), operations_in_document, test_cases, failures,
    errors, passes: [...]} over every credential in `tokens`."""
    passes = []
    for role, token in tokens.items():
        api = _pass(api_url, token, max_examples, [*CONTRACT_CHECKS, "negative_data_rejection"],
                    ["--exclude-path", HOOK_PATH], seed)  # fmt: skip
        hook = _pass(api_url, token, max_examples, CONTRACT_CHECKS, ["--include-path", HOOK_PATH], seed)
        for name, report in (("api", api), ("hook", hook)):
            passes.append(
                {
                    "role": role,
                    "pass": name,
                    "operations": report["operations"]["tested"],
                    "operations_total": report["operations"]["total"],
                    "test_cases": report["test_cases"]["generated"],
                    "failures": len(report["failures"]),
                    "errors": len(report["errors"]),
                    "server_errors": sum(1 for f in report["failures"] if "Server error" in json.dumps(f)),
                    "output_tail": report["output_tail"] if report["failures"] or report["errors"] else "",
                }
            )
    by_role = {role: sum(p["operations"] for p in passes if p["role"] == role) for role in tokens}
    return {
        "operations": min(by_role.values()),
        "operations_in_document": passes[0]["operations_total"],
        "test_cases": sum(p["test_cases"] for p in passes),
        "failures": sum(p["failures"] for p in passes),
        "errors": sum(p["errors"] for p in passes),
        "server_errors": sum(p["server_errors"] for p in passes),
        "passes": passes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--out", type=Path, default=Path("tests/perf/results/fuzz.json"))
    args = parser.parse_args()
    from tests.security.platform import running_platform

    with running_platform() as platform:
        result = run(platform.api_url, platform.tokens, args.max_examples, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "passes"}, indent=2))
    for entry in result["passes"]:
        if entry["output_tail"]:
            print(entry["output_tail"])
    return 0 if result["failures"] == 0 and result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
