"""The `lighthouse` command: run the embedded local cloud, manage agents, open sessions."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from lighthouse_tools.admin import (
    api_url_of,
    cmd_agents_add,
    cmd_agents_list,
    cmd_agents_projects,
    cmd_connections_add,
    cmd_connections_list,
    cmd_connections_remove,
    cmd_operator_credential,
    cmd_pipelines_deploy,
    cmd_pipelines_run,
    credential_path,
    write_credential,
)
from lighthouse_tools.deploy import add_arguments as add_deploy_arguments
from lighthouse_tools.deploy import cmd_deploy
from lighthouse_tools.fleet_cli import register as register_fleet_commands
from lighthouse_tools.hook import Fallback
from lighthouse_tools.localcloud.durable.datadir import DATA_DIR_VARIABLE, DEFAULT_DATA_DIR, DataDirectoryError
from lighthouse_tools.localcloud.durable.datadir import resolve as resolve_data_dir
from lighthouse_tools.policy_cli import register as register_policy_commands
from lighthouse_tools.push_cli import register as register_push_commands
from lighthouse_tools.runs_cli import register as register_runs_commands
from lighthouse_tools.views_cli import register as register_views_commands

DEFAULT_STATE_FILE = Path(".lighthouse/local.json")
ROLES = ("agent", "expert", "human", "admin")


def _worker_count(text: str) -> int:
    """`--workers`: a whole number from 0 (the function code in this process) to 16."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects a whole number, got {text!r}") from None
    if not 0 <= count <= 16:
        raise argparse.ArgumentTypeError(f"expects 0 to 16 worker processes, got {count}")
    return count


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--param expects KEY=VALUE, got {pair!r}")
        params[key] = value
    return params


# ---- up -------------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from lighthouse_tools.localcloud.cloud import REGION, LocalCloud, LocalCloudOptions

    options = LocalCloudOptions(
        host=args.host,
        aws_port=args.aws_port,
        api_port=args.api_port,
        websocket_port=args.websocket_port,
        parameter_overrides=_parse_params(args.param),
        start_schedules=not args.no_schedules,
        worker_processes=args.workers,
        data_dir=resolve_data_dir(args.data_dir),
        fresh=args.fresh,
        mqtt_url=args.mqtt_url,
        mqtt_port=args.mqtt_port,
    )
    cloud = LocalCloud(options)
    # The handler only flips a flag: setting a threading.Event from a signal handler takes the
    # event's lock, and a second signal arriving inside that lock deadlocks the main thread.
    stop_requested: list[int] = []

    def request_stop(signum: int, frame: Any) -> None:
        stop_requested.append(signum)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        cloud.start()
    except DataDirectoryError as error:
        print(f"lighthouse up: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        print(f"lighthouse up: could not start the local cloud: {error}", file=sys.stderr)
        cloud.stop()
        return 1
    state_file: Path = args.state_file
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "api_url": cloud.api_url,
        "aws_endpoint_url": cloud.aws_endpoint_url,
        "region": REGION,
        "environment": cloud.function_environment(),
        "mqtt_url": cloud.mqtt_url,
        "mcp_url": cloud.mcp_url,
        "websocket_url": cloud.websocket_url,
        "console_url": cloud.console_url,
        "pid": os.getpid(),
    }
    state_file.write_text(json.dumps(state, indent=2))
    credential = credential_path(state_file)
    write_credential(credential, cloud.api_url, *cloud.operator_credential())
    print(f"Lighthouse is up on the embedded local cloud (ready in {cloud.started_in_seconds:.2f} s)")
    print(f"  API:          {cloud.api_url}")
    print(f"  AWS endpoint: {cloud.aws_endpoint_url}  (region {REGION}; any access key works)")
    print(f"  MQTT broker:  {cloud.mqtt_url}  (`lighthouse agent-core`; credentials: POST /fleet/mqtt-credentials)")
    print(f"  MCP:          {cloud.mcp_url}  (Streamable HTTP; Authorization: Bearer <session token>)")
    print(f"  WebSocket:    {cloud.websocket_url}  (push; ?token=<session token>; `lighthouse watch`)")
    print(f"  Console:      {cloud.console_url}  (sign in with a human or admin agent's id and secret)")
    print(f"  State file:   {state_file}")
    if cloud.persistence is not None:
        report = cloud.persistence.report
        print(
            f"  Data:         {cloud.persistence.path} (restored in {report.seconds:.2f} s: "
            f"{'a snapshot and ' if report.snapshot_loaded else ''}{report.journal_records} journal records"
            f"{f', {report.torn_bytes} bytes of a torn last record dropped' if report.torn_bytes else ''}; "
            f"{report.interrupted} interrupted executions resume)"
        )
    print(f"  Admin:        {credential} (the operator's credential, mode 0600; admin commands use it)")
    print("Press Ctrl+C to stop.", flush=True)
    while not stop_requested:
        time.sleep(0.2)
    print("Stopping...", flush=True)
    cloud.stop()
    state_file.unlink(missing_ok=True)
    credential.unlink(missing_ok=True)  # its secret derives from this run's master secret
    credential.with_name("operator.session.json").unlink(missing_ok=True)
    print("Stopped.", flush=True)
    return 0


def _sign_in(command: str, args: argparse.Namespace) -> tuple[str, requests.Response] | int:
    """POST /sessions as the agent; the API URL and the response, or an exit code after saying why not."""
    from lighthouse.auth.keys import sign_session_request

    api_url = api_url_of(args)
    if not api_url:
        print(f"lighthouse {command}: pass --api-url (no local state file found)", file=sys.stderr)
        return 2
    secret = args.secret or os.environ.get("LIGHTHOUSE_AGENT_SECRET", "")
    if not secret:
        print(f"lighthouse {command}: pass --secret or set LIGHTHOUSE_AGENT_SECRET", file=sys.stderr)
        return 2
    timestamp, nonce = int(time.time()), secrets.token_hex(16)
    body = {
        "agent_id": args.agent_id,
        "timestamp": timestamp,
        "nonce": nonce,
        "signature": sign_session_request(secret, args.agent_id, timestamp, nonce),
    }
    response = requests.post(f"{api_url.rstrip('/')}/sessions", json=body, timeout=30)
    if response.status_code != 201:
        print(f"lighthouse {command}: {response.status_code} {response.text}", file=sys.stderr)
        return 1
    return api_url, response


def cmd_session(args: argparse.Namespace) -> int:
    signed_in = _sign_in("session", args)
    if isinstance(signed_in, int):
        return signed_in
    _, response = signed_in
    print(response.json()["token"] if not args.json else response.text)
    return 0


def cmd_hook_token(args: argparse.Namespace) -> int:
    signed_in = _sign_in("hook token", args)
    if isinstance(signed_in, int):
        return signed_in
    api_url, session = signed_in
    response = requests.post(
        f"{api_url.rstrip('/')}/hooks/token",
        headers={"Authorization": f"Bearer {session.json()['token']}"},
        timeout=30,
    )
    if response.status_code != 201:
        print(f"lighthouse hook token: {response.status_code} {response.text}", file=sys.stderr)
        return 1
    print(response.json()["hook_token"] if not args.json else response.text)
    return 0


def _token_id(token_or_id: str) -> str:
    """The id of a hook token given as the token itself (its `jti`) or as the id."""
    if not token_or_id.startswith("lh1."):
        return token_or_id
    import base64

    payload = token_or_id.split(".")[1]
    try:
        return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"])
    except (ValueError, KeyError, TypeError):
        return token_or_id


def cmd_hook_revoke(args: argparse.Namespace) -> int:
    signed_in = _sign_in("hook revoke", args)
    if isinstance(signed_in, int):
        return signed_in
    api_url, session = signed_in
    token_id = _token_id(args.token)
    response = requests.delete(
        f"{api_url.rstrip('/')}/hooks/token/{quote(token_id, safe='')}",
        headers={"Authorization": f"Bearer {session.json()['token']}"},
        timeout=30,
    )
    if response.status_code != 200:
        print(f"lighthouse hook revoke: {response.status_code} {response.text}", file=sys.stderr)
        return 1
    print(f"revoked hook token {token_id}")
    return 0


def cmd_hook_claude_code(args: argparse.Namespace) -> int:
    from lighthouse_tools.hook import run

    api_url = api_url_of(args)
    token = args.token or os.environ.get("LIGHTHOUSE_HOOK_TOKEN", "")
    if args.event == "post-tool-use":
        return _post_tool_use(args, api_url, token)
    fallback = _fallback(args.on_unreachable or os.environ.get("LIGHTHOUSE_HOOK_ON_UNREACHABLE", "deny"))
    if not api_url or not token:
        missing = "the API URL (--api-url or LIGHTHOUSE_API_URL)" if not api_url else "LIGHTHOUSE_HOOK_TOKEN"
        print(f"Lighthouse hook is not configured: {missing} is missing; denied (fail closed)", file=sys.stderr)
        return 2
    answer = run(sys.stdin.read(), api_url, token, fallback, args.timeout)
    if answer.stdout:
        print(answer.stdout)
    if answer.stderr:
        print(answer.stderr, file=sys.stderr)
    return answer.exit_code


def _fallback(configured: str) -> Fallback:
    return "ask" if configured == "ask" else "allow" if configured == "allow" else "deny"


def _post_tool_use(args: argparse.Namespace, api_url: str, token: str) -> int:
    from lighthouse_tools import post_hook

    if not api_url or not token:
        missing = "the API URL (--api-url or LIGHTHOUSE_API_URL)" if not api_url else "LIGHTHOUSE_HOOK_TOKEN"
        print(f"Lighthouse history is not configured: {missing} is missing; change not recorded", file=sys.stderr)
        return 1
    limits = post_hook.Limits(max_files=args.max_files, max_bytes=args.max_bytes)
    outcome = post_hook.run(sys.stdin.read(), api_url, token, args.project, limits, args.timeout)
    if outcome.stderr:
        print(outcome.stderr, file=sys.stderr)
    return outcome.exit_code


def cmd_pipelines_schemas(args: argparse.Namespace) -> int:
    from lighthouse_tools.manifest_schemas import write

    for path in write():
        print(f"wrote {path}")
    return 0


def cmd_event_schemas(args: argparse.Namespace) -> int:
    from lighthouse_tools.event_schemas import write

    for path in write():
        print(f"wrote {path}")
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from lighthouse_tools.openapi import OPENAPI_PATH, render, write

    if args.write:
        write()
        print(f"wrote {OPENAPI_PATH}")
    else:
        sys.stdout.write(render())
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    import boto3

    from lighthouse_tools.deploy import environment_from_outputs

    stacks = boto3.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"]
    for key, value in sorted(environment_from_outputs(stacks[0].get("Outputs", [])).items()):
        print(f"export {key}={value}")
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from lighthouse_tools.mcp_server import serve

    api_url = api_url_of(args)
    agent_id = args.agent_id or os.environ.get("LIGHTHOUSE_AGENT_ID", "")
    secret = os.environ.get("LIGHTHOUSE_AGENT_SECRET", "")
    missing = [name for name, value in (("--api-url", api_url), ("--agent-id", agent_id),
                                        ("LIGHTHOUSE_AGENT_SECRET", secret)) if not value]  # fmt: skip
    if missing:
        print(f"lighthouse mcp: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    from lighthouse_tools.push_cli import websocket_url_of

    serve(api_url, agent_id, secret, "" if args.no_push else websocket_url_of(args))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lighthouse", description=__doc__)
    parser.add_argument("--state-file", type=Path, default=DEFAULT_STATE_FILE, help="where `up` records its endpoints")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the platform on the embedded local cloud until interrupted")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--api-port", type=int, default=8787, help="0 picks a free port")
    up.add_argument("--aws-port", type=int, default=4577, help="0 picks a free port")
    up.add_argument("--websocket-port", type=int, default=8789, help="the WebSocket API's port (0 picks a free one)")
    up.add_argument("--param", action="append", default=[], help="template parameter override KEY=VALUE")
    up.add_argument("--no-schedules", action="store_true", help="do not run scheduled events")
    up.add_argument(
        "--workers",
        type=_worker_count,
        default=min(2, os.cpu_count() or 1),
        help="worker processes for the function code (0: run it in this process)",
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"where the state is kept (default: ${DATA_DIR_VARIABLE}, else {DEFAULT_DATA_DIR})",
    )
    up.add_argument("--fresh", action="store_true", help="delete the data directory's contents and start empty")
    up.add_argument("--mqtt-port", type=int, default=1883, help="the port mosquitto listens on (0 picks a free port)")
    up.add_argument(
        "--mqtt-url", help="use this MQTT broker (its dynamic-security plugin) instead of starting mosquitto"
    )
    up.set_defaults(func=cmd_up)

    agents = commands.add_parser("agents", help="manage agents").add_subparsers(dest="agents_command", required=True)
    add = agents.add_parser("add", help="register an agent and print its secret once")
    add.add_argument("agent_id")
    add.add_argument("--role", choices=ROLES, default="agent")
    add.add_argument("--metadata", help="JSON object stored with the agent")
    add.add_argument("--json", action="store_true", help="print JSON instead of text")
    add.add_argument("--project", action="append", default=[], help="a project it belongs to (repeatable)")
    add.set_defaults(func=cmd_agents_add)
    projects = agents.add_parser("projects", help="replace the projects an agent belongs to (none: leave all)")
    projects.add_argument("agent_id")
    projects.add_argument("projects", nargs="*")
    projects.set_defaults(func=cmd_agents_projects)
    listing = agents.add_parser("list", help="list agents and their presence")
    listing.set_defaults(func=cmd_agents_list)

    session = commands.add_parser("session", help="sign in as an agent and print a bearer token")
    session.add_argument("agent_id")
    session.add_argument("--secret", help="the agent's secret (or LIGHTHOUSE_AGENT_SECRET)")
    session.add_argument("--api-url", help="defaults to the running local cloud's API")
    session.add_argument("--json", action="store_true")
    session.set_defaults(func=cmd_session)
    hook = commands.add_parser("hook", help="Claude Code hooks").add_subparsers(dest="hook_command", required=True)
    hook_token = hook.add_parser("token", help="sign in as an agent and print its long-lived hook token")
    hook_token.add_argument("agent_id")
    hook_token.add_argument("--secret", help="the agent's secret (or LIGHTHOUSE_AGENT_SECRET)")
    hook_token.add_argument("--api-url", help="defaults to LIGHTHOUSE_API_URL or the running local cloud's API")
    hook_token.add_argument("--json", action="store_true")
    hook_token.set_defaults(func=cmd_hook_token)
    revoke = hook.add_parser("revoke", help="revoke a hook token (yours, or any as an admin)")
    revoke.add_argument("token", help="the hook token, or its token_id")
    revoke.add_argument("--agent-id", required=True, help="who signs in to revoke it (its owner or an admin)")
    revoke.add_argument("--secret", help="that agent's secret (or LIGHTHOUSE_AGENT_SECRET)")
    revoke.add_argument("--api-url", help="defaults to LIGHTHOUSE_API_URL or the running local cloud's API")
    revoke.set_defaults(func=cmd_hook_revoke)
    claude = hook.add_parser(
        "claude-code", help="Claude Code command hook: PreToolUse (a gate decision) or PostToolUse (file history)"
    )
    claude.add_argument("--event", choices=("pre-tool-use", "post-tool-use"), default="pre-tool-use")
    claude.add_argument("--project", help="post-tool-use: the project (default: the base name of the hook's cwd)")
    claude.add_argument("--max-files", type=int, default=50, help="post-tool-use: files sent per call at most")
    claude.add_argument("--max-bytes", type=int, default=1024 * 1024, help="post-tool-use: larger files: metadata only")
    claude.add_argument("--api-url", help="defaults to LIGHTHOUSE_API_URL or the running local cloud's API")
    claude.add_argument("--token", help="the hook token (better: LIGHTHOUSE_HOOK_TOKEN)")
    claude.add_argument(
        "--on-unreachable",
        choices=("deny", "ask", "allow"),
        help="what to answer when Lighthouse cannot (default deny, or LIGHTHOUSE_HOOK_ON_UNREACHABLE)",
    )
    claude.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the service")
    claude.set_defaults(func=cmd_hook_claude_code)
    mcp = commands.add_parser("mcp", help="serve the elicitation tools over MCP (stdio) as one agent")
    mcp.add_argument("--api-url", help="the Lighthouse API (or LIGHTHOUSE_API_URL, or the local state file)")
    mcp.add_argument("--agent-id", help="the agent the tools act as (or LIGHTHOUSE_AGENT_ID)")
    mcp.add_argument("--websocket-url", help="push (or LIGHTHOUSE_WEBSOCKET_URL, or the local state file)")
    mcp.add_argument("--no-push", action="store_true", help="long-poll the API instead of the WebSocket")
    mcp.set_defaults(func=cmd_mcp)

    pipelines = commands.add_parser("pipelines", help="agent pipelines").add_subparsers(
        dest="pipelines_command", required=True
    )
    deploy = pipelines.add_parser("deploy", help="validate, compile and register a config directory")
    deploy.add_argument("directory", type=Path)
    deploy.set_defaults(func=cmd_pipelines_deploy)
    run = pipelines.add_parser("run", help="start a task and wait for it (prints the task)")
    run.add_argument("pipeline", nargs="?", help="the pipeline (or let --mode/--tag route the task)")
    run.add_argument("--input", default="{}", help="the task input, JSON")
    run.add_argument("--mode")
    run.add_argument("--tag", action="append", default=[])
    run.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the task to end")
    run.add_argument("--analysis-only", action="store_true")
    run.add_argument("--dry-run", action="store_true")
    run.add_argument("--skip-tools", action="store_true")
    run.set_defaults(func=cmd_pipelines_run)
    schemas = pipelines.add_parser("schemas", help="write the manifests' JSON Schemas to schemas/manifests/")
    schemas.set_defaults(func=cmd_pipelines_schemas)

    connections = commands.add_parser("connections", help="named LLM connections (admin)").add_subparsers(
        dest="connections_command", required=True
    )
    connection_add = connections.add_parser("add", help="create or replace a connection")
    connection_add.add_argument("name")
    connection_add.add_argument("--provider", required=True, choices=("openai", "anthropic", "ollama"))
    connection_add.add_argument("--base-url", required=True, help="the only URL its key is sent to")
    connection_add.add_argument("--api-key-env", help="the environment variable holding the key (not the key)")
    connection_add.set_defaults(func=cmd_connections_add)
    connections.add_parser("list", help="list connections (never their keys)").set_defaults(func=cmd_connections_list)
    connection_remove = connections.add_parser("remove", help="delete a connection")
    connection_remove.add_argument("name")
    connection_remove.set_defaults(func=cmd_connections_remove)

    operator = commands.add_parser("operator", help="the built-in operator (admin)").add_subparsers(
        dest="operator_command", required=True
    )
    credential = operator.add_parser(
        "credential", help="derive the operator's credential from a deployed stack's master secret (0600 file)"
    )
    credential.add_argument("--master-secret-arn", help="or LIGHTHOUSE_MASTER_SECRET_ARN (`lighthouse env`)")
    credential.add_argument("--api-url", help="or LIGHTHOUSE_API_URL (`lighthouse env`)")
    credential.add_argument("--out", type=Path, help="where to write it (default: next to --state-file)")
    credential.set_defaults(func=cmd_operator_credential)

    deploy = commands.add_parser(
        "deploy", help="sam build + sam deploy of template.yaml to AWS, or to LocalStack/MiniStack with --endpoint"
    )
    add_deploy_arguments(deploy)
    deploy.set_defaults(func=cmd_deploy)

    register_policy_commands(commands)
    register_fleet_commands(commands)
    register_runs_commands(commands)
    register_views_commands(commands)
    register_push_commands(commands)

    env = commands.add_parser("env", help="print `export` lines for a deployed stack's resources")
    env.add_argument("--stack", default="lighthouse")
    env.set_defaults(func=cmd_env)

    events = commands.add_parser("events", help="the event catalog").add_subparsers(
        dest="events_command", required=True
    )
    events.add_parser("schemas", help="write every event's JSON Schema to schemas/events/").set_defaults(
        func=cmd_event_schemas
    )

    openapi = commands.add_parser("openapi", help="print (or --write) the OpenAPI document of the HTTP API")
    openapi.add_argument("--write", action="store_true", help="write schemas/openapi.json")
    openapi.set_defaults(func=cmd_openapi)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if "agent-core" in arguments:
        # Its own parser: the daemon re-executes itself with exactly these arguments.
        from lighthouse_tools.agent_core.main import main as agent_core

        at = arguments.index("agent-core")
        before = arguments[:at]
        if before[:1] == ["--state-file"] and len(before) == 2:
            return agent_core(["--state-file", before[1], *arguments[at + 1 :]])
        if not before:
            return agent_core(arguments[at + 1 :])
    args = build_parser().parse_args(arguments)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
