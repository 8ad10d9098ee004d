"""`lighthouse fleet` (admin) and `lighthouse agent-core` (an agent host's daemon).

lighthouse fleet ls [--status S] [--component C] [--tag T]
lighthouse fleet show AGENT
lighthouse fleet refresh AGENT [--wait N]
lighthouse fleet config AGENT KEY=VALUE... [--wait N]
lighthouse fleet install AGENT --component ID --version V --entrypoint MOD:OBJ (--wheel F | --source S --sha256 H)
lighthouse fleet upload WHEEL
lighthouse fleet uninstall AGENT --component ID
lighthouse fleet tags AGENT TAG...
lighthouse fleet command REQUEST_ID [--wait N]
lighthouse fleet mqtt-credentials        # as the agent (LIGHTHOUSE_AGENT_SECRET), or as the operator
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import requests

from lighthouse_tools.admin import api_url_of, as_admin, usage_error
from lighthouse_tools.client import ApiError, LighthouseClient

MAX_WAIT = 20


def _print(value: Any) -> int:
    print(json.dumps(value, indent=2, sort_keys=True))
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    def listing(api: LighthouseClient) -> int:
        query = "&".join(
            f"{k}={v}" for k, v in (("status", args.status), ("component", args.component), ("tag", args.tag)) if v
        )
        page = api.request("GET", "/fleet/agents?limit=200" + (f"&{query}" if query else ""))
        for agent in page["agents"]:
            print(
                f"{agent['agent_id']}\t{agent['presence']}\tcore {agent.get('core_version') or '-'}\t"
                f"{agent['component_count']} components\t{','.join(agent['tags']) or '-'}"
            )
        return 0

    return as_admin("fleet ls", args, listing)


def cmd_show(args: argparse.Namespace) -> int:
    return as_admin("fleet show", args, lambda api: _print(api.request("GET", f"/fleet/agents/{args.agent}")))


def cmd_tags(args: argparse.Namespace) -> int:
    return as_admin(
        "fleet tags",
        args,
        lambda api: _print(api.request("PUT", f"/fleet/agents/{args.agent}/tags", {"tags": args.tags})),
    )


def cmd_command_status(args: argparse.Namespace) -> int:
    return as_admin(
        "fleet command",
        args,
        lambda api: _print(api.request("GET", f"/fleet/commands/{args.request_id}?wait={args.wait}")),
    )


def _send_with(api: LighthouseClient, args: argparse.Namespace, body: dict[str, Any]) -> int:
    accepted = api.request("POST", f"/fleet/agents/{args.agent}/commands", {**body, "ttl_seconds": args.ttl})
    if not args.wait:
        _print(accepted)
        return 0
    view = api.request("GET", f"/fleet/commands/{accepted['request_id']}?wait={args.wait}")
    _print(view)
    return 0 if view["status"] == "succeeded" else 1


def _send(name: str, args: argparse.Namespace, body: dict[str, Any]) -> int:
    return as_admin(f"fleet {name}", args, lambda api: _send_with(api, args, body))


def cmd_refresh(args: argparse.Namespace) -> int:
    return _send("refresh", args, {"type": "refresh"})


def cmd_config(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    for pair in args.settings:
        key, sep, value = pair.partition("=")
        if not sep:
            return usage_error("fleet config", f"expected KEY=VALUE, got {pair!r}")
        try:
            changes[key] = json.loads(value)  # 60 -> int, true -> bool
        except ValueError:
            changes[key] = value  # INFO -> str
    return _send("config", args, {"type": "cfg_set", "set": changes})


def upload_wheel(api: LighthouseClient, wheel: Path) -> tuple[str, str]:
    """PUT the wheel where the API says; (its artifact source, its sha256)."""
    data = wheel.read_bytes()
    grant = api.request("POST", "/fleet/components", {"filename": wheel.name})
    response = requests.put(grant["upload_url"], data=data, timeout=120)
    if response.status_code >= 300:
        raise ApiError(response.status_code, {"error": {"message": f"upload refused: {response.text[:200]}"}})
    return grant["source"], hashlib.sha256(data).hexdigest()


def cmd_upload(args: argparse.Namespace) -> int:
    def upload(api: LighthouseClient) -> int:
        source, digest = upload_wheel(api, args.wheel)
        _print({"source": source, "sha256": digest})
        return 0

    return as_admin("fleet upload", args, upload)


def cmd_install(args: argparse.Namespace) -> int:
    if not args.wheel and not (args.source and args.sha256):
        return usage_error("fleet install", "pass --wheel FILE, or --source and --sha256")

    def install(api: LighthouseClient) -> int:
        source, digest = upload_wheel(api, args.wheel) if args.wheel else (args.source, args.sha256)
        body = {
            "type": "install",
            "component_id": args.component,
            "version": args.version,
            "entrypoint": args.entrypoint,
            "source": source,
            "sha256": digest,
        }
        return _send_with(api, args, body)

    return as_admin("fleet install", args, install)


def cmd_uninstall(args: argparse.Namespace) -> int:
    return _send("uninstall", args, {"type": "uninstall", "component_id": args.component})


def cmd_mqtt_credentials(args: argparse.Namespace) -> int:
    secret = os.environ.get("LIGHTHOUSE_AGENT_SECRET", "")
    if args.agent_id and secret:
        api_url = api_url_of(args)
        if not api_url:
            return usage_error("fleet mqtt-credentials", "pass --api-url (no local state file found)")
        try:
            _print(LighthouseClient(api_url, args.agent_id, secret).request("POST", "/fleet/mqtt-credentials", {}))
        except ApiError as error:
            print(f"lighthouse fleet mqtt-credentials: {error}", file=sys.stderr)
            return 1
        return 0
    return as_admin(
        "fleet mqtt-credentials", args, lambda api: _print(api.request("POST", "/fleet/mqtt-credentials", {}))
    )


def _wait(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_WAIT:
        raise argparse.ArgumentTypeError(f"expects 0 to {MAX_WAIT} seconds")
    return value


def register(commands: Any) -> None:
    fleet = commands.add_parser("fleet", help="see and steer agent cores over MQTT (admin)").add_subparsers(
        dest="fleet_command", required=True
    )
    listing = fleet.add_parser("ls", help="agents, presence, core version, components, tags")
    listing.add_argument("--status", choices=("online", "offline", "unknown"))
    listing.add_argument("--component")
    listing.add_argument("--tag")
    listing.set_defaults(func=cmd_ls)
    show = fleet.add_parser("show", help="one agent's retained snapshots")
    show.add_argument("agent")
    show.set_defaults(func=cmd_show)
    tags = fleet.add_parser("tags", help="replace an agent's tags")
    tags.add_argument("agent")
    tags.add_argument("tags", nargs="*")
    tags.set_defaults(func=cmd_tags)
    status = fleet.add_parser("command", help="a command's status and result")
    status.add_argument("request_id")
    status.add_argument("--wait", type=_wait, default=0)
    status.set_defaults(func=cmd_command_status)
    for name, func, help_text in (
        ("refresh", cmd_refresh, "republish every snapshot"),
        ("config", cmd_config, "set runtime configuration: KEY=VALUE ... (telemetry_enabled, heartbeat_s, log_level)"),
        ("install", cmd_install, "install a component wheel"),
        ("uninstall", cmd_uninstall, "uninstall a component"),
    ):
        sub = fleet.add_parser(name, help=help_text)
        sub.add_argument("agent")
        sub.add_argument("--wait", type=_wait, default=10, help="seconds to wait for the result (0: do not)")
        sub.add_argument("--ttl", type=int, default=600, help="seconds an offline agent is waited for")
        sub.set_defaults(func=func)
        if name == "config":
            sub.add_argument("settings", nargs="+")
        if name in ("install", "uninstall"):
            sub.add_argument("--component", required=True)
        if name == "install":
            sub.add_argument("--version", required=True)
            sub.add_argument("--entrypoint", required=True)
            sub.add_argument("--wheel", type=Path, help="upload this wheel and install it (source and sha256 from it)")
            sub.add_argument("--source", help="artifact:components/<file>.whl or an allowed URL")
            sub.add_argument("--sha256")
    fleet.add_parser("schemas", help="write the commands' JSON Schemas to schemas/fleet/").set_defaults(
        func=cmd_schemas
    )
    upload = fleet.add_parser("upload", help="upload a component wheel; prints its source and sha256")
    upload.add_argument("wheel", type=Path)
    upload.set_defaults(func=cmd_upload)
    credentials = fleet.add_parser(
        "mqtt-credentials", help="MQTT credentials (as --agent-id with LIGHTHOUSE_AGENT_SECRET, else the operator)"
    )
    credentials.add_argument("--agent-id")
    credentials.set_defaults(func=cmd_mqtt_credentials)
    # Parsed by lighthouse_tools.agent_core.main (cli.main hands it the arguments as they are).
    commands.add_parser(
        "agent-core", help="run the agent-core daemon: --agent-id ID --state-dir DIR [--api-url] [--mqtt-url]"
    )


FLEET_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "fleet"


def render_schemas() -> dict[str, str]:
    """{file name: content}: the JSON Schema each command type is validated against (a test keeps them current)."""
    from lighthouse.fleet.contract import COMMAND_TYPES
    from lighthouse.fleet.service import command_schema

    return {f"{kind}.json": json.dumps(command_schema(kind), indent=2, sort_keys=True) + "\n" for kind in COMMAND_TYPES}


def cmd_schemas(args: argparse.Namespace) -> int:
    FLEET_SCHEMAS.mkdir(parents=True, exist_ok=True)
    for name, content in render_schemas().items():
        (FLEET_SCHEMAS / name).write_text(content)
        print(f"wrote {FLEET_SCHEMAS / name}")
    return 0
