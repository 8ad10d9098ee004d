"""Developer, infrastructure, data and publishing tools: which invocations are deny classes, which
are everyday work, and which are left to the policy (network calls, containers, deploys)."""

from __future__ import annotations

import re
from collections.abc import Callable

from lighthouse.validation import scripts, shell
from lighthouse.validation.where import Verdict, Where, deny, short_flags

Handler = Callable[[shell.SimpleCommand, Where, Verdict], None]
_LOCAL_HOST = re.compile(r"^(https?://)?(localhost|127\.\d+\.\d+\.\d+|\[::1\]|0\.0\.0\.0)(:\d+)?(/|$)", re.IGNORECASE)


def _words(command: shell.SimpleCommand) -> list[str]:
    return [a.lower() for a in command.args if not a.startswith("-")]


def _lowered(command: shell.SimpleCommand) -> list[str]:
    return [a.lower() for a in command.args]


# ---- language toolchains ------------------------------------------------------------------------

_PUBLISH = {"npm": "publish", "yarn": "publish", "pnpm": "publish", "cargo": "publish", "poetry": "publish",
            "gem": "push", "twine": "upload", "uv": "publish", "bun": "publish"}  # fmt: skip
_JS_EVERYDAY = frozenset(
    {"install", "i", "ci", "add", "test", "t", "run", "run-script", "build", "lint", "ls", "list", "outdated",
     "audit", "exec", "start", "dev", "init", "why", "view", "info", "pack", "remove", "rm", "uninstall", "update",
     "up", "prune", "dedupe", "format", "typecheck", "check", "tsc", "vitest", "jest", "eslint", "prettier"}
)  # fmt: skip


def _js(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    words = _words(command)
    if words[:1] == [_PUBLISH.get(command.name)]:
        deny(verdict, "package_publish", command)
    elif {"-g", "--global"} & set(_lowered(command)):
        return  # outside the project: left to the policy
    elif not words or words[0] in _JS_EVERYDAY or command.name in ("npx", "bunx"):
        verdict.everyday = (
            "everyday_install" if words[:1] in (["install"], ["i"], ["ci"], ["add"]) else "everyday_build"
        )


def _python_packaging(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    words, lowered = _words(command), _lowered(command)
    if command.name in _PUBLISH and words[:1] == [_PUBLISH[command.name]]:
        deny(verdict, "package_publish", command)
    elif command.privileged or "--break-system-packages" in lowered or "--user" in lowered:
        return  # outside the project's environment: left to the policy
    elif command.name in ("pip", "pip3") and words[:1] in (["install"], ["uninstall"]):
        verdict.everyday = "everyday_install"
    elif command.name in ("pip", "pip3", "uv", "poetry", "pipenv", "tox", "nox"):
        verdict.everyday = "everyday_build"


def _cargo_go(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    words = _words(command)
    if command.name == "cargo" and words[:1] == ["publish"]:
        deny(verdict, "package_publish", command)
    elif words[:1] != ["install"] or command.name == "go":
        verdict.everyday = "everyday_build"


def _twine_gem(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    words = _words(command)
    if words[:1] == [_PUBLISH.get(command.name)]:
        deny(verdict, "package_publish", command)
    elif command.name == "gem" and words[:1] in (["list"], ["build"]):
        verdict.everyday = "everyday_build"


def _interpreter(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    """`python -c`, `node -e`, `perl -e`, `python - <<EOF`...: the code is inspected; a script file or
    a module (`python -m pytest`) is the project's own code."""
    code = scripts.inline_code(command)
    if code is not None:
        found = scripts.dangers(code, where)
        if found:
            verdict.denies.append(("inline_script_danger", found))
        elif scripts.is_plain(code):
            verdict.everyday = "everyday_script"
        return
    operands = [a for a in command.args if not a.startswith("-")]
    if "-m" in command.args or (operands and where.inside(operands[0])):
        verdict.everyday = "everyday_build"


# ---- infrastructure -----------------------------------------------------------------------------


def _kubectl(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    words = _words(command)
    if "delete" in words[:3]:  # after global options' values (`--context prod delete ...`)
        deny(verdict, "kubectl_delete", command)
    elif words[:1] in (["get"], ["describe"], ["logs"], ["top"], ["explain"], ["version"], ["config"], ["diff"]):
        verdict.everyday = "everyday_read"


def _helm(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    words = _words(command)
    if words[:1] in (["uninstall"], ["delete"], ["del"], ["un"]):
        deny(verdict, "helm_uninstall", command)
    elif words[:1] in (["list"], ["ls"], ["status"], ["template"], ["lint"], ["show"], ["get"], ["history"]):
        verdict.everyday = "everyday_read"


def _terraform(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    words, lowered = _words(command), _lowered(command)
    if words[:1] == ["destroy"] or (words[:1] == ["apply"] and "-destroy" in lowered):
        deny(verdict, "terraform_destroy", command)
    elif words[:1] in (["plan"], ["validate"], ["fmt"], ["init"], ["show"], ["output"], ["providers"], ["version"]):
        verdict.everyday = "everyday_build"


def _pulumi(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    words = _words(command)
    if words[:1] == ["destroy"] or words[:2] == ["stack", "rm"]:
        deny(verdict, "pulumi_destroy", command)
    elif words[:1] in (["preview"], ["stack"], ["config"], ["whoami"]):
        verdict.everyday = "everyday_read"


_CLOUD_DELETE = re.compile(r"^(delete|remove|rm|rb|destroy|purge|terminate)([-_].*)?$|^(delete|remove|purge)")


def _cloud(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    words = _words(command)
    deleting = _aws_deletes(words, set(_lowered(command))) if command.name == "aws" else _names_a_delete(words)
    if deleting:
        deny(verdict, "cloud_delete", command)
    elif any(w.startswith(("list", "describe", "get", "show")) or w == "ls" for w in words[1:3]):
        verdict.everyday = "everyday_read"


def _aws_deletes(words: list[str], options: set[str]) -> bool:
    if words[:2] == ["s3", "rm"]:
        return bool({"--recursive", "-r"} & options)
    if words[:2] == ["s3", "rb"]:
        return "--force" in options
    return words[:1] != ["s3"] and any(re.match(r"^(delete|terminate|remove)-", w) for w in words[1:2])


def _names_a_delete(words: list[str]) -> bool:
    """gcloud and az: any word of the command path is a delete verb (`compute instances delete`)."""
    return any(_CLOUD_DELETE.match(w) for w in words)


def _docker(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    words, lowered = _words(command), _lowered(command)
    flags = short_flags(command.args)
    prune_all = words[:2] in (["system", "prune"], ["image", "prune"]) and ("a" in flags or "--all" in lowered)
    if prune_all or "--volumes" in lowered or words[:2] in (["volume", "rm"], ["volume", "prune"]):
        deny(verdict, "docker_prune", command)
    elif words[:1] in (["ps"], ["images"], ["logs"], ["inspect"], ["build"], ["version"], ["info"], ["compose"]):
        verdict.everyday = "everyday_build" if words[:1] in (["build"], ["compose"]) else "everyday_read"


# ---- data ---------------------------------------------------------------------------------------

_SQL_DROP = re.compile(
    r"\b(drop\s+(database|schema|table)|truncate(\s+table)?\s+\w)|\bdelete\s+from\s+[\w.\"`]+\s*(;|$)", re.IGNORECASE
)


def _sql(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    text = " ".join([*command.args, command.stdin_text or ""])
    if _SQL_DROP.search(text):
        deny(verdict, "sql_destruction", command)


def _redis(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    if {"flushall", "flushdb"} & {a.lower() for a in command.args}:
        deny(verdict, "redis_flush", command)


def _mongo(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    if re.search(r"\.(dropDatabase|drop)\s*\(", " ".join([*command.args, command.stdin_text or ""])):
        deny(verdict, "mongo_drop", command)


def _http(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    """An HTTP DELETE to a host that is not this machine; other requests are left to the policy."""
    urls = [a for a in command.args if _URL.match(a)]
    local = bool(urls) and all(_LOCAL_HOST.match(u) for u in urls)
    method = _method(command)
    if method == "DELETE" and not local:
        deny(verdict, "http_delete_remote", command)
    elif local and method != "DELETE" and not command.upstream:
        verdict.everyday = "everyday_read"  # the project's own service on this machine


_URL = re.compile(r"^(https?://|[\w.-]+\.[a-z]{2,}(/|:|$))", re.IGNORECASE)
_METHOD_OPTIONS = ("-x", "--request", "--method")


def _method(command: shell.SimpleCommand) -> str:
    """The request method curl (-X), wget (--method) or httpie (a leading METHOD word) sends."""
    args = command.args
    if command.name in ("http", "https") and args and args[0].upper() == "DELETE":
        return "DELETE"
    method = ""
    for index, arg in enumerate(args):
        lowered = arg.lower()
        if lowered in _METHOD_OPTIONS and index + 1 < len(args):
            method = args[index + 1].upper()
        elif lowered.startswith(("--request=", "--method=")):
            method = arg.split("=", 1)[1].upper()
        elif lowered.startswith("-x") and len(arg) > 2:
            method = arg[2:].upper()
    return method


def _gh(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    words = _words(command)
    if words[:2] in (["repo", "delete"], ["release", "delete"]):
        deny(verdict, "forge_destruction", command)
    elif words[1:2] in (["list"], ["view"], ["status"], ["diff"], ["checks"]) or words[:1] in (["status"], ["search"]):
        verdict.everyday = "everyday_read"


# ---- payloads fed to a shell --------------------------------------------------------------------

_DECODERS = frozenset({"base64", "xxd", "openssl", "gunzip", "zcat", "uudecode", "rev", "curl", "wget", "fetch"})


def payload(command: shell.SimpleCommand, verdict: Verdict) -> None:
    """A shell or interpreter reading decoded or downloaded content from its pipeline."""
    if command.name in shell.INTERPRETERS and set(command.upstream) & _DECODERS:
        readers_stdin = command.stdin_text is None and not any(
            a in ("-c", "-e", "-r") or (not a.startswith("-") and a != "-") for a in command.args
        )
        if readers_stdin:
            deny(verdict, "decoded_payload_to_shell", command)


TOOL_HANDLERS: dict[str, Handler] = {
    **{name: _js for name in ("npm", "yarn", "pnpm", "npx", "bun", "bunx")},
    **{name: _python_packaging for name in ("pip", "pip3", "uv", "poetry", "pipenv", "tox", "nox")},
    "cargo": _cargo_go,
    "go": _cargo_go,
    "twine": _twine_gem,
    "gem": _twine_gem,
    **{name: _interpreter for name in (*scripts.LANGUAGES, "deno")},
    "kubectl": _kubectl,
    "helm": _helm,
    "terraform": _terraform,
    "tofu": _terraform,
    "pulumi": _pulumi,
    "aws": _cloud,
    "gcloud": _cloud,
    "az": _cloud,
    "docker": _docker,
    "podman": _docker,
    **{name: _sql for name in ("psql", "mysql", "mariadb", "sqlite3", "sqlcmd", "cockroach")},
    "redis-cli": _redis,
    "mongo": _mongo,
    "mongosh": _mongo,
    "curl": _http,
    "wget": _http,
    "http": _http,
    "https": _http,
    "gh": _gh,
}
