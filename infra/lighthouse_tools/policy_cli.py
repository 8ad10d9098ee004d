"""`lighthouse policy`: the validation gate's Cedar policies and the rule classes they decide.

lighthouse policy classes            # every deny class (family, danger, safer alternative) and everyday class
lighthouse policy defaults           # the shipped policies, to start a project's own from
lighthouse policy show               # the policies in force and their version
lighthouse policy set FILE|-         # admin: replace them (validated by the API before use)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lighthouse_tools.admin import as_admin, usage_error
from lighthouse_tools.client import LighthouseClient

MAX_POLICY_FILE_BYTES = 64 * 1024


def cmd_classes(args: argparse.Namespace) -> int:
    from lighthouse.validation.catalog import DENY, EVERYDAY

    print("deny (forbidden by the default policies; edit them to change a class):")
    for rule in DENY.values():
        alternative = f" -- instead: {rule.alternative}" if rule.alternative else ""
        print(f"  {rule.name}\t{rule.family}\t{rule.danger}{alternative}")
    print("everyday (permitted by permit-everyday-work inside the roots):")
    for name in sorted(EVERYDAY):
        print(f"  {name}")
    return 0


def cmd_defaults(args: argparse.Namespace) -> int:
    from lighthouse.validation.policy import default_policies

    sys.stdout.write(default_policies())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    def show(api: LighthouseClient) -> int:
        view = api.request("GET", "/validation/policies")
        by = f" by {view['updated_by']}" if view.get("updated_by") else ""
        print(f"// version {view['version']}{by}")
        sys.stdout.write(view["policies"])
        return 0

    return as_admin("policy show", args, show)


def cmd_set(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read(MAX_POLICY_FILE_BYTES + 1) if str(args.file) == "-" else _read(args.file)
    except (OSError, UnicodeDecodeError) as error:
        return usage_error("policy set", f"cannot read {args.file}: {error}")
    if len(text.encode()) > MAX_POLICY_FILE_BYTES:
        return usage_error("policy set", f"{args.file} is larger than {MAX_POLICY_FILE_BYTES} bytes")
    if not text.strip():
        return usage_error("policy set", f"{args.file} is empty")

    def put(api: LighthouseClient) -> int:
        view: dict[str, Any] = api.request("PUT", "/validation/policies", {"policies": text})
        print(f"policies replaced: version {view['version']}")
        return 0

    return as_admin("policy set", args, put)


def _read(path: Path) -> str:
    if path.stat().st_size > MAX_POLICY_FILE_BYTES:
        return "x" * (MAX_POLICY_FILE_BYTES + 1)
    return path.read_text()


def register(commands: Any) -> None:
    policy = commands.add_parser("policy", help="the validation gate's Cedar policies and rule classes").add_subparsers(
        dest="policy_command", required=True
    )
    policy.add_parser("classes", help="list the deny and everyday classes").set_defaults(func=cmd_classes)
    policy.add_parser("defaults", help="print the shipped default policies").set_defaults(func=cmd_defaults)
    policy.add_parser("show", help="print the policies in force").set_defaults(func=cmd_show)
    replace = policy.add_parser("set", help="replace the policies (admin); FILE or - for stdin")
    replace.add_argument("file", type=Path)
    replace.set_defaults(func=cmd_set)
