"""`lighthouse watch` (the caller's notifications, pushed over the WebSocket API) and
`lighthouse flags get | set FILE | rollout FLAG PERCENT | evaluate FLAG` (feature flags).

`watch` acts as --agent-id (or LIGHTHOUSE_AGENT_ID) with LIGHTHOUSE_AGENT_SECRET, else as the
operator; `flags` as the operator (an admin credential).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from lighthouse.apiclient import ApiError
from lighthouse_tools.admin import admin_client
from lighthouse_tools.push_client import PushClient, Refused
from lighthouse_tools.views_cli import client_of


def websocket_url_of(args: argparse.Namespace) -> str:
    """--websocket-url, else LIGHTHOUSE_WEBSOCKET_URL, else the running local cloud's state file."""
    url: str = getattr(args, "websocket_url", None) or os.environ.get("LIGHTHOUSE_WEBSOCKET_URL", "")
    if not url and args.state_file.exists():
        url = json.loads(args.state_file.read_text()).get("websocket_url") or ""
    return url


def cmd_watch(args: argparse.Namespace) -> int:
    url = websocket_url_of(args)
    if not url:
        print("lighthouse watch: no WebSocket URL (--websocket-url, LIGHTHOUSE_WEBSOCKET_URL or `lighthouse up`)",
              file=sys.stderr)  # fmt: skip
        return 2
    client, agent_id = client_of(args)
    feeds: dict[str, int | None] = {f"agent:{agent_id}": args.since}
    feeds.update({feed: None for feed in args.feed})
    stop = threading.Event()
    remaining = [args.count] if args.count else []

    def show(envelope: dict[str, Any]) -> None:
        print(json.dumps(envelope, sort_keys=True), flush=True)
        if remaining:
            remaining[0] -= 1
            if remaining[0] <= 0:
                stop.set()

    def status(message: dict[str, Any]) -> None:
        print(json.dumps(message, sort_keys=True), file=sys.stderr, flush=True)

    push = PushClient(url, client.bearer_token, show, feeds, on_status=status)
    try:
        push.run(stop)
    except Refused as error:
        print(f"lighthouse watch: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _flags_request(args: argparse.Namespace) -> tuple[str, str, Any]:
    """(method, path, body) of a `lighthouse flags` command."""
    command = args.flags_command
    if command == "get":
        return "GET", "/flags", None
    if command == "set":
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        body: dict[str, Any] = {"flags": json.loads(text)}
        if args.expected_version is not None:
            body["expected_version"] = args.expected_version
        return "PUT", "/flags", body
    if command == "rollout":
        return "POST", f"/flags/{args.flag}/rollout", {"percent": args.percent}
    query = {key: value for key, value in (("agent_id", args.agent), ("role", args.role)) if value}
    return "GET", f"/flags/{args.flag}/evaluation{f'?{urlencode(query)}' if query else ''}", None


def cmd_flags(args: argparse.Namespace) -> int:
    try:
        client = admin_client(args)
        result = client.request(*_flags_request(args))
    except ApiError as error:
        print(f"lighthouse flags {args.flags_command}: {error}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        print(f"lighthouse flags {args.flags_command}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def _percent(text: str) -> int:
    value = int(text.rstrip("%"))
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError("a percentage from 0 to 100")
    return value


def register(commands: Any) -> None:
    watch = commands.add_parser("watch", help="print your notifications as they are pushed (WebSocket)")
    watch.add_argument("--websocket-url", help="the WebSocket API (or LIGHTHOUSE_WEBSOCKET_URL, or the state file)")
    watch.add_argument("--api-url", help="the Lighthouse API (or LIGHTHOUSE_API_URL, or the state file)")
    watch.add_argument("--agent-id", help="watch as this agent (with LIGHTHOUSE_AGENT_SECRET); default: the operator")
    watch.add_argument("--feed", action="append", default=[], choices=("gate", "fleet"), help="admins: also this feed")
    watch.add_argument("--since", type=int, default=None, help="resend your feed's notifications after this seq")
    watch.add_argument("--count", type=int, default=0, help="stop after this many notifications (0: never)")
    watch.set_defaults(func=cmd_watch)

    flags = commands.add_parser("flags", help="feature flags (admin)").add_subparsers(
        dest="flags_command", required=True
    )
    get = flags.add_parser("get", help="print the flags document, its version and the declared flags")
    put = flags.add_parser("set", help="replace the flags document with FILE (- reads stdin)")
    put.add_argument("file")
    put.add_argument("--expected-version", type=int, default=None, help="refuse unless the document is at this version")
    rollout = flags.add_parser("rollout", help="turn FLAG on for PERCENT of agents (by a hash of their id)")
    rollout.add_argument("flag")
    rollout.add_argument("percent", type=_percent)
    evaluate = flags.add_parser("evaluate", help="a flag's value for an agent")
    evaluate.add_argument("flag")
    evaluate.add_argument("--agent", help="the agent (default: the operator)")
    evaluate.add_argument("--role", choices=("agent", "expert", "human", "admin"))
    for parser in (get, put, rollout, evaluate):
        parser.add_argument("--api-url", help="the Lighthouse API (or LIGHTHOUSE_API_URL, or the state file)")
        parser.set_defaults(func=cmd_flags)
