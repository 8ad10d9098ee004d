"""`lighthouse runs`: job templates, directives, runs, the allowlist and the LLM ledger's reports
(as the operator; the API decides what each caller may do).

lighthouse runs templates
lighthouse runs launch JOB [--directive D] [--param K=V ...] [--target T ...] [--notify-url URL] [--wait S]
lighthouse runs ls [--job J] [--status S]
lighthouse runs show RUN | report RUN | cancel RUN
lighthouse runs since-last-success JOB
lighthouse runs directives [ID [--version N]] | directive-set ID --file F.json | directive-versions ID
lighthouse runs allowlist [--set F.json] | inventory
lighthouse runs tokens [--since D] [--until D] | costs [--since D] [--until D] | by-directive
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from lighthouse_tools.admin import as_admin, usage_error
from lighthouse_tools.client import LighthouseClient

FINAL = ("success", "failed", "cancelled")


def _print(value: Any) -> int:
    print(json.dumps(value, indent=2, sort_keys=True))
    return 0


def _get(name: str, path: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        return as_admin(f"runs {name}", args, lambda api: _print(api.request("GET", path.format(**vars(args)))))

    return command


def _parameters(pairs: list[str]) -> dict[str, Any]:
    """K=V pairs; a value that reads as JSON (a number, true, a list) is taken as such."""
    parameters: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator:
            raise ValueError(f"--param {pair!r} is not KEY=VALUE")
        try:
            parameters[key] = json.loads(value)
        except json.JSONDecodeError:
            parameters[key] = value
    return parameters


def cmd_launch(args: argparse.Namespace) -> int:
    try:
        parameters = _parameters(args.param)
    except ValueError as error:
        return usage_error("runs launch", str(error))
    body: dict[str, Any] = {"job": args.job, "directive": args.directive, "parameters": parameters,
                            "targets": args.target}  # fmt: skip
    if args.notify_url:
        body["notify_url"] = args.notify_url

    def launch(api: LighthouseClient) -> int:
        accepted = api.request("POST", "/runs", body)
        deadline = time.monotonic() + args.wait
        run = accepted
        while args.wait and run["status"] not in FINAL and time.monotonic() < deadline:
            time.sleep(0.5)
            run = api.request("GET", f"/runs/{accepted['run_id']}")
        _print(run if args.wait else accepted)
        return 0 if run["status"] not in ("failed", "cancelled") else 1

    return as_admin("runs launch", args, launch)


def cmd_ls(args: argparse.Namespace) -> int:
    query = urlencode({k: v for k, v in (("job", args.job), ("status", args.status), ("limit", 200)) if v})

    def listing(api: LighthouseClient) -> int:
        for run in api.request("GET", f"/runs?{query}")["runs"]:
            print(
                f"{run['run_id']}\t{run['status']}\t{','.join(run['jobs'])}\t{run['directive']}\t{run['launched_at']}"
            )
        return 0

    return as_admin("runs ls", args, listing)


def cmd_cancel(args: argparse.Namespace) -> int:
    return as_admin("runs cancel", args, lambda api: _print(api.request("POST", f"/runs/{args.run}/cancel", {})))


def cmd_directives(args: argparse.Namespace) -> int:
    if not args.directive:
        return _get("directives", "/directives")(args)
    suffix = f"?version={args.version}" if args.version else ""
    return _get("directives", f"/directives/{quote(args.directive, safe='')}{suffix}")(args)


def cmd_directive_set(args: argparse.Namespace) -> int:
    try:
        body = json.loads(Path(args.file).read_text())
    except (OSError, ValueError) as error:
        return usage_error("runs directive-set", f"cannot read {args.file}: {error}")
    path = f"/directives/{quote(args.directive, safe='')}"
    return as_admin("runs directive-set", args, lambda api: _print(api.request("PUT", path, body)))


def cmd_allowlist(args: argparse.Namespace) -> int:
    if not args.set:
        return _get("allowlist", "/allowlist")(args)
    try:
        body = json.loads(Path(args.set).read_text())
    except (OSError, ValueError) as error:
        return usage_error("runs allowlist", f"cannot read {args.set}: {error}")
    entries = body if isinstance(body, list) else body.get("entries")
    return as_admin("runs allowlist", args, lambda api: _print(api.request("PUT", "/allowlist", {"entries": entries})))


def _window(name: str, path: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        query = urlencode({k: v for k, v in (("since", args.since), ("until", args.until)) if v})
        return as_admin(f"runs {name}", args, lambda api: _print(api.request("GET", f"{path}?{query}")))

    return command


def register(commands: Any) -> None:
    runs = commands.add_parser("runs", help="job templates, directives, runs, the allowlist, LLM usage").add_subparsers(
        dest="runs_command", required=True
    )
    runs.add_parser("templates", help="the job templates").set_defaults(func=_get("templates", "/job-templates"))
    launch = runs.add_parser("launch", help="launch a run of a job template")
    launch.add_argument("job")
    launch.add_argument("--directive", default="default")
    launch.add_argument("--param", action="append", default=[], help="KEY=VALUE (JSON values allowed)")
    launch.add_argument("--target", action="append", default=[], help="a container id or agent id (repeatable)")
    launch.add_argument("--notify-url")
    launch.add_argument("--wait", type=int, default=0, help="seconds to wait for the run to end")
    launch.set_defaults(func=cmd_launch)
    listing = runs.add_parser("ls", help="runs, newest first")
    listing.add_argument("--job")
    listing.add_argument("--status", choices=("pending", "running", *FINAL))
    listing.set_defaults(func=cmd_ls)
    for name, path, help_text in (
        ("show", "/runs/{run}", "a run and its jobs"),
        ("report", "/runs/{run}/report", "a run's report: artifacts (download URLs), tokens, cost, duration"),
    ):
        sub = runs.add_parser(name, help=help_text)
        sub.add_argument("run")
        sub.set_defaults(func=_get(name, path))
    cancel = runs.add_parser("cancel", help="cancel a run")
    cancel.add_argument("run")
    cancel.set_defaults(func=cmd_cancel)
    since = runs.add_parser("since-last-success", help="the runs of a job after its last success")
    since.add_argument("job")
    since.set_defaults(func=_get("since-last-success", "/runs/since-last-success?job={job}"))
    directives = runs.add_parser("directives", help="the directives, or one (its latest or --version)")
    directives.add_argument("directive", nargs="?")
    directives.add_argument("--version", type=int)
    directives.set_defaults(func=cmd_directives)
    directive_set = runs.add_parser("directive-set", help="create or update a D4 directive from a JSON file")
    directive_set.add_argument("directive")
    directive_set.add_argument("--file", required=True)
    directive_set.set_defaults(func=cmd_directive_set)
    versions = runs.add_parser("directive-versions", help="every version of a directive")
    versions.add_argument("directive")
    versions.set_defaults(func=_get("directive-versions", "/directives/{directive}/versions"))
    allowlist = runs.add_parser("allowlist", help="the container allowlist (--set F.json replaces it)")
    allowlist.add_argument("--set", help="a JSON file: a list of {container_id, enabled, tags, description}")
    allowlist.set_defaults(func=cmd_allowlist)
    runs.add_parser("inventory", help="containers agents report, marked allowlisted or not").set_defaults(
        func=_get("inventory", "/inventory")
    )
    for name, path, help_text in (
        ("tokens", "/llm/token-stats", "LLM tokens by model, provider and day"),
        ("costs", "/llm/cost-report", "LLM cost by model, run, directive and agent"),
        ("by-directive", "/llm/usage-by-directive", "LLM usage per directive"),
    ):
        sub = runs.add_parser(name, help=help_text)
        sub.add_argument("--since")
        sub.add_argument("--until")
        sub.set_defaults(func=_window(name, path))
