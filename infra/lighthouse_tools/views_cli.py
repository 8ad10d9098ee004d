"""`lighthouse views ...` and `lighthouse mount`: file history and the views, read over the HTTP API.

lighthouse views current PROJECT PATH | history PROJECT INSTANT PATH | shadow PROJECT PATH
lighthouse views stream PROJECT KIND:ID [--at INSTANT] | context AGENT
lighthouse views tree PROJECT [--at INSTANT] | versions PROJECT PATH | diff PROJECT PATH --from T [--to T]
lighthouse views stats PROJECT PATH
lighthouse mount DIR --project P [--cache-seconds S]

They act as the agent named by --agent-id (or LIGHTHOUSE_AGENT_ID) with LIGHTHOUSE_AGENT_SECRET, or
else as the operator (the admin credential `lighthouse up` writes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from urllib.parse import quote, urlencode

from lighthouse.apiclient import ApiError, LighthouseClient
from lighthouse_tools.admin import admin_client, api_url_of


def _path(path: str) -> str:
    return "/".join(quote(part, safe="") for part in path.strip("/").split("/"))


def client_of(args: argparse.Namespace) -> tuple[LighthouseClient, str]:
    agent_id = getattr(args, "agent_id", None) or os.environ.get("LIGHTHOUSE_AGENT_ID", "")
    secret = os.environ.get("LIGHTHOUSE_AGENT_SECRET", "")
    if agent_id and secret:
        return LighthouseClient(api_url_of(args), agent_id, secret), agent_id
    client = admin_client(args)
    return client, client.agent_id


def _serve(name: str, args: argparse.Namespace, action: Callable[[LighthouseClient], str]) -> int:
    try:
        client, _ = client_of(args)
        sys.stdout.write(action(client))
    except ApiError as error:
        print(f"lighthouse views {name}: {error}", file=sys.stderr)
        return 1
    return 0


def _json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def _query(**values: str | None) -> str:
    present = {key: value for key, value in values.items() if value}
    return f"?{urlencode(present)}" if present else ""


def cmd_views(args: argparse.Namespace) -> int:
    project = quote(getattr(args, "project", "") or "", safe="")
    view = args.views_command
    actions: dict[str, Callable[[LighthouseClient], str]] = {
        "current": lambda c: c.text(f"/views/{project}/current/{_path(args.path)}")[0],
        "history": lambda c: c.text(f"/views/{project}/history/{quote(args.instant, safe='')}/{_path(args.path)}")[0],
        "shadow": lambda c: c.text(f"/views/{project}/shadow/{_path(args.path)}")[0],
        "stream": lambda c: c.text(
            f"/views/{project}/streams/{quote(args.stream.replace('#', ':', 1), safe=':')}{_query(at=args.at)}"
        )[0],
        "context": lambda c: c.text(f"/views/context/{quote(args.agent, safe=':')}")[0],
        "tree": lambda c: _json(c.request("GET", f"/history/{project}/tree{_query(at=args.at)}")),
        "versions": lambda c: _json(c.request("GET", f"/history/{project}/versions/{_path(args.path)}")),
        "stats": lambda c: _json(c.request("GET", f"/history/{project}/stats/{_path(args.path)}")),
        "diff": lambda c: c.request(
            "GET", f"/history/{project}/diff/{_path(args.path)}{_query(**{'from': args.since, 'at': args.to})}"
        )["diff"],
    }
    return _serve(view, args, actions[view])


def cmd_mount(args: argparse.Namespace) -> int:
    from lighthouse_tools.mount import mount

    client, agent_id = client_of(args)
    print(f"mounting project {args.project!r} read-only at {args.directory} (Ctrl+C unmounts)", file=sys.stderr)
    mount(client, args.directory, args.project, agent_id, args.cache_seconds)
    return 0


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    views = commands.add_parser("views", help="file history and the annotated views").add_subparsers(
        dest="views_command", required=True
    )

    def add(name: str, help_text: str, *positional: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = views.add_parser(name, help=help_text)
        for argument in positional:
            parser.add_argument(argument)
        parser.add_argument("--api-url", help="defaults to LIGHTHOUSE_API_URL or the running local cloud's API")
        parser.add_argument("--agent-id", help="act as this agent (with LIGHTHOUSE_AGENT_SECRET)")
        parser.set_defaults(func=cmd_views)
        return parser

    add("current", "a file's latest content, annotated", "project", "path")
    add("history", "a file as it was at an instant", "project", "instant", "path")
    add("shadow", "experts' suggestions about a file ('commands' for Bash)", "project", "path")
    add("stream", "a stream's state at an instant (KIND:ID)", "project", "stream").add_argument("--at")
    add("context", "what an agent is involved in now", "agent")
    add("tree", "the project's files, now or at an instant", "project").add_argument("--at")
    add("versions", "a file's versions", "project", "path")
    add("stats", "a file's contributors and change statistics", "project", "path")
    diff = add("diff", "a unified diff of a file between two instants", "project", "path")
    diff.add_argument("--from", dest="since", required=True, help="the earlier instant")
    diff.add_argument("--to", help="the later instant (default now)")

    mount = commands.add_parser("mount", help="mount a project's views read-only with FUSE")
    mount.add_argument("directory")
    mount.add_argument("--project", required=True)
    mount.add_argument("--cache-seconds", type=float, default=5.0, help="how long answers are reused")
    mount.add_argument("--api-url", help="defaults to LIGHTHOUSE_API_URL or the running local cloud's API")
    mount.add_argument("--agent-id", help="act as this agent (with LIGHTHOUSE_AGENT_SECRET)")
    mount.set_defaults(func=cmd_mount)
