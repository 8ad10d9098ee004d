"""Code an interpreter runs inline (`python -c`, `python - <<EOF`, `node -e`, `perl -e`, `ruby -e`,
`php -r`, `deno eval`): the shell commands it would run, the recursive deletions it would make, and
whether it is plain computation.

Written by hand (regular expressions over the code's text, no parsers for five languages): the aim is
the dangers a one-liner states openly. A string that reaches a process API is handed back to the
shell parser as a nested command, so `os.system('rm -rf /')` meets the same rules as `rm -rf /`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # shell.py imports this module
    from lighthouse.validation.shell import SimpleCommand
    from lighthouse.validation.where import Where

LANGUAGES = frozenset({"python", "python3", "python2", "node", "nodejs", "perl", "ruby", "php"})
_CODE_FLAGS = {"-c": ("python", "python3", "python2"), "-e": ("node", "nodejs", "perl", "ruby", "deno"),
               "-r": ("php",), "--eval": ("node", "nodejs"), "eval": ("deno",), "-E": ("perl",)}  # fmt: skip
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|`([^`]*)`')
_LIST = re.compile(r"\[\s*((?:(?:\"[^\"]*\"|'[^']*')\s*,\s*)*(?:\"[^\"]*\"|'[^']*'))\s*,?\s*\]")
_PROCESS = re.compile(
    r"\b(os\.(system|popen|exec\w*|spawn\w*)|subprocess\.\w+|check_output|check_call|Popen|execSync|execFileSync|"
    r"spawnSync|child_process|exec|spawn|system|shell_exec|passthru|proc_open|popen|IO\.popen|Open3)\s*\(|`|%x[({\[]",
)
_RECURSIVE_DELETE = re.compile(
    r"\b(shutil\.rmtree|rmtree|remove_tree|rm_rf|rm_r|FileUtils\.(rm|remove)\w*|rimraf|removedirs)\b|"
    r"\b(rmSync|rmdirSync|fs\.rm|fs\.promises\.rm|fsPromises\.rm)\s*\([^)]*recursive\s*:\s*true"
)
# Deleting one file is ordinary; deleting in a loop or over a listing is a recursive delete by hand.
_FILE_DELETE = re.compile(r"\b(os\.(remove|unlink)|unlink|unlinkSync|File\.delete|\.unlink)\s*\(")
_MANY = re.compile(r"\b(for|while|glob|walk|listdir|scandir|readdirSync|readdir|forEach|map|Dir\.glob|each)\b")
_EFFECTS = re.compile(
    r"\b(open|write\w*|unlink|remove|rename|rmdir|mkdir|chmod|chown|socket|urllib|requests|http|fetch|net|"
    r"fs\.|os\.|shutil|subprocess|pathlib|Path|File|Dir|IO|system|exec|eval|import\s+ctypes|__import__)\b",
)
_PATH = re.compile(r"^(/|~|\.\.?/|\$HOME|\$\{HOME\})")


def inline_code(command: SimpleCommand) -> str | None:
    """The code given on the command line or on stdin; None when the interpreter runs a file."""
    given = _code_argument(command.name, command.args)
    if given is not None:
        return given
    operands = [a for a in command.args if not a.startswith("-") or a == "-"]
    reads_stdin = not operands or operands[0] == "-"
    return command.stdin_text if reads_stdin else None


def _code_argument(name: str, args: list[str]) -> str | None:
    for index, arg in enumerate(args):
        if name in _CODE_FLAGS.get(arg, ()) and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("-c") and len(arg) > 2 and name.startswith("python"):
            return arg[2:]
    return None


def embedded_commands(code: str) -> list[str]:
    """The shell command lines the code passes to a process API: each string literal, and each list
    of string literals joined (`subprocess.run(["rm", "-rf", "/"])`)."""
    if not _PROCESS.search(code):
        return []
    found: list[str] = []
    for listed in _LIST.finditer(code):
        found.append(" ".join(a or b for a, b in re.findall(r"\"([^\"]*)\"|'([^']*)'", listed.group(1))))
    for literal in _STRING.finditer(code):
        text = next(group for group in literal.groups() if group is not None)
        if text.strip():
            found.append(text)
    return found


def dangers(code: str, where: Where) -> str | None:
    """What recursive deletion the code makes (None if none, or only of paths inside the roots)."""
    matched = _RECURSIVE_DELETE.search(code) or (_FILE_DELETE.search(code) if _MANY.search(code) else None)
    if matched is None or _only_inside(code, where):
        return None
    return f"{matched.group(0).strip()} in `{code.strip()[:160]}`"


def _only_inside(code: str, where: Where) -> bool:
    """Every path the code names is inside the roots (and it names at least one)."""
    paths = [a or b for a, b in re.findall(r"\"([^\"]*)\"|'([^']*)'", code) if _PATH.match(a or b)]
    return bool(paths) and all(where.inside(p) for p in paths)


def is_plain(code: str) -> bool:
    """Computation and printing only: no files, processes, network or dynamic imports named."""
    return not _EFFECTS.search(code) and "`" not in code
