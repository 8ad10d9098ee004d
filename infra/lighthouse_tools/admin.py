"""The CLI's admin commands: clients of the HTTP API, signed in with an admin credential.

The credential is the built-in operator's (its secret is derived from the master secret): `lighthouse
up` writes it next to its state file with mode 0600, and on AWS `lighthouse operator credential`
derives it from the deployed master secret. An admin agent registered with `agents add --role admin`
may be used instead (LIGHTHOUSE_ADMIN_AGENT_ID and LIGHTHOUSE_ADMIN_SECRET). No command here touches a
table: authorization, validation and the request log are the API's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from lighthouse_tools.client import ApiError, LighthouseClient

ADMIN_ID_VARIABLE = "LIGHTHOUSE_ADMIN_AGENT_ID"
ADMIN_SECRET_VARIABLE = "LIGHTHOUSE_ADMIN_SECRET"  # noqa: S105 - the variable's name, not a secret


def credential_path(state_file: Path) -> Path:
    return state_file.parent / "operator.json"


def write_credential(path: Path, api_url: str, agent_id: str, secret: str) -> None:
    """Write the credential readable by its owner only (created 0600, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"api_url": api_url, "agent_id": agent_id, "secret": secret}, file)


def api_url_of(args: argparse.Namespace) -> str:
    """--api-url, else LIGHTHOUSE_API_URL, else the running local cloud's state file."""
    api_url: str = getattr(args, "api_url", None) or os.environ.get("LIGHTHOUSE_API_URL", "")
    if not api_url and args.state_file.exists():
        api_url = json.loads(args.state_file.read_text())["api_url"]
    return api_url


def admin_client(args: argparse.Namespace) -> LighthouseClient:
    agent_id = os.environ.get(ADMIN_ID_VARIABLE, "")
    secret = os.environ.get(ADMIN_SECRET_VARIABLE, "")
    api_url = api_url_of(args)
    path = credential_path(args.state_file)
    if not (agent_id and secret) and path.exists():
        credential = json.loads(path.read_text())
        agent_id, secret = credential["agent_id"], credential["secret"]
        api_url = api_url or credential["api_url"]
    if not (agent_id and secret):
        raise SystemExit(
            f"no admin credential: start `lighthouse up` (it writes {path}), run `lighthouse operator credential` "
            f"against a deployed stack, or set {ADMIN_ID_VARIABLE} and {ADMIN_SECRET_VARIABLE}"
        )
    if not api_url:
        raise SystemExit("no API URL: pass --api-url or set LIGHTHOUSE_API_URL")
    # The operator's token is kept beside its credential, for the next command (one process each).
    kept = path.with_name("operator.session.json") if path.exists() else None
    return LighthouseClient(api_url, agent_id, secret, session_file=kept)


def as_admin(name: str, args: argparse.Namespace, action: Callable[[LighthouseClient], int]) -> int:
    """Run `action` with an admin client; an API refusal or an unreachable API is reported, not raised."""
    try:
        return action(admin_client(args))
    except ApiError as error:
        print(f"lighthouse {name}: {error}", file=sys.stderr)
        for problem in error.body.get("error", {}).get("details", {}).get("problems", []):
            print(f"  {problem['file']} {problem['path']}: {problem['message']} [{problem['rule']}]", file=sys.stderr)
        for field in error.body.get("error", {}).get("details", {}).get("fields", []):
            print(f"  {field.get('path', '')}: {field.get('message', '')}", file=sys.stderr)
        for problem in error.body.get("error", {}).get("details", {}).get("errors", []):
            print(f"  {problem}", file=sys.stderr)
        return 1
    except requests.RequestException as error:
        print(f"lighthouse {name}: the API did not answer: {error}", file=sys.stderr)
        return 1


def usage_error(name: str, message: str) -> int:
    print(f"lighthouse {name}: {message}", file=sys.stderr)
    return 2


# ---- agents ---------------------------------------------------------------------------------------


def cmd_agents_add(args: argparse.Namespace) -> int:
    from lighthouse import strictjson
    from lighthouse.errors import LighthouseError

    try:
        metadata = strictjson.loads_object(args.metadata, max_bytes=4096, where="--metadata", empty={})
    except LighthouseError as error:
        return usage_error("agents add", error.message)
    body = {"agent_id": args.agent_id, "role": args.role, "metadata": metadata, "projects": args.project}

    def register(api: LighthouseClient) -> int:
        registration = api.request("POST", "/agents", body)
        if args.json:
            print(json.dumps(registration))
        else:
            print(f"Registered {registration['agent_id']} (role {registration['role']}).")
            print(f"Secret (shown once, keep it safe): {registration['secret']}")
        return 0

    return as_admin("agents add", args, register)


def cmd_agents_projects(args: argparse.Namespace) -> int:
    def replace(api: LighthouseClient) -> int:
        view = api.request("PUT", f"/agents/{quote(args.agent_id, safe='')}/projects", {"projects": args.projects})
        print(f"{view['agent_id']}: {', '.join(view['projects']) or '(no projects)'}")
        return 0

    return as_admin("agents projects", args, replace)


def cmd_agents_list(args: argparse.Namespace) -> int:
    def listing(api: LighthouseClient) -> int:
        cursor: str | None = None
        while True:
            page = api.request("GET", "/agents?limit=200" + (f"&next_token={quote(cursor, safe='')}" if cursor else ""))
            for agent in page["agents"]:
                seen = agent.get("last_seen") or "-"
                print(f"{agent['agent_id']}\t{agent['role']}\t{agent['presence']}\tlast seen {seen}")
            cursor = page.get("next_token")
            if not cursor:
                return 0

    return as_admin("agents list", args, listing)


# ---- pipelines ------------------------------------------------------------------------------------


def _read_config_dir(directory: Path) -> dict[str, str]:
    from lighthouse.pipelines.manifests import MANIFEST_FILES

    if not directory.is_dir():
        raise SystemExit(f"lighthouse pipelines: {directory} is not a directory")
    return {name: (directory / name).read_text() for name in MANIFEST_FILES if (directory / name).exists()}


def cmd_pipelines_deploy(args: argparse.Namespace) -> int:
    files = _read_config_dir(args.directory)

    def deploy(api: LighthouseClient) -> int:
        registration = api.request("POST", "/pipelines", {"files": files})
        for pipeline in registration["pipelines"]:
            print(
                f"{pipeline['name']} v{pipeline['version']} (workflow {pipeline['workflow']})"
                f" -> {pipeline['state_machine_arn']}"
            )
        return 0

    return as_admin("pipelines deploy", args, deploy)


def cmd_pipelines_run(args: argparse.Namespace) -> int:
    from lighthouse import strictjson
    from lighthouse.errors import LighthouseError

    try:
        task_input = strictjson.loads(args.input, max_bytes=64 * 1024, where="--input")
    except LighthouseError as error:
        return usage_error("pipelines run", error.message)
    body: dict[str, Any] = {
        "input": task_input,
        "mode": args.mode,
        "tags": args.tag,
        "overrides": {"analysis_only": args.analysis_only, "dry_run": args.dry_run, "skip_tools": args.skip_tools},
    }
    if args.pipeline:
        body["pipeline"] = args.pipeline

    def run(api: LighthouseClient) -> int:
        task = api.request("POST", "/tasks", body)
        deadline = time.monotonic() + args.wait
        while task["status"] in ("PENDING", "RUNNING") and time.monotonic() < deadline:
            wait = int(min(20.0, max(1.0, deadline - time.monotonic())))
            task = api.request("GET", f"/tasks/{quote(task['task_id'], safe='')}?wait={wait}")
        print(json.dumps(task, indent=2))
        return 0 if task["status"] in ("COMPLETED", "PENDING", "RUNNING") else 1

    return as_admin("pipelines run", args, run)


# ---- connections ----------------------------------------------------------------------------------


def cmd_connections_add(args: argparse.Namespace) -> int:
    from lighthouse.pipelines.connections import NAME_PATTERN

    if not re.fullmatch(NAME_PATTERN, args.name):
        return usage_error("connections add", f"the name must match {NAME_PATTERN}")
    key = os.environ.get(args.api_key_env, "") if args.api_key_env else ""
    if args.api_key_env and not key:
        return usage_error("connections add", f"{args.api_key_env} is not set")
    body = {"provider": args.provider, "base_url": args.base_url, "api_key": key}

    def put(api: LighthouseClient) -> int:
        view = api.request("PUT", f"/connections/{quote(args.name, safe='')}", body)
        has_key = "with" if view["has_key"] else "without"
        print(f"{view['name']}: {view['provider']} at {view['base_url']} ({has_key} a key)")
        return 0

    return as_admin("connections add", args, put)


def cmd_connections_list(args: argparse.Namespace) -> int:
    def listing(api: LighthouseClient) -> int:
        for view in api.request("GET", "/connections")["connections"]:
            print(f"{view['name']}\t{view['provider']}\t{view['base_url']}\t{'key' if view['has_key'] else 'no key'}")
        return 0

    return as_admin("connections list", args, listing)


def cmd_connections_remove(args: argparse.Namespace) -> int:
    def remove(api: LighthouseClient) -> int:
        api.request("DELETE", f"/connections/{quote(args.name, safe='')}")
        print(f"removed connection {args.name}")
        return 0

    return as_admin("connections remove", args, remove)


# ---- the operator credential on AWS ---------------------------------------------------------------


def cmd_operator_credential(args: argparse.Namespace) -> int:
    """Derive the operator's credential from a deployed stack's master secret (needs IAM read on it)."""
    import boto3

    from lighthouse.agents.models import OPERATOR_ID
    from lighthouse.auth.keys import operator_secret

    secret_arn = args.master_secret_arn or os.environ.get("LIGHTHOUSE_MASTER_SECRET_ARN", "")
    api_url = api_url_of(args)
    if not secret_arn or not api_url:
        return usage_error(
            "operator credential",
            "needs the stack's master secret ARN and API URL: `eval $(lighthouse env --stack NAME)` first, "
            "or pass --master-secret-arn and --api-url",
        )
    master = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    path = args.out or credential_path(args.state_file)
    write_credential(path, api_url, OPERATOR_ID, operator_secret(master))
    print(f"wrote the operator credential for {api_url} to {path} (mode 0600)")
    return 0
