"""Security findings for the `current` view: the Bash gate's rules for shell, a small rule set for code.

The code rules are line patterns on purpose: they mark what a reviewer should look at (dynamic code,
a shell, unsafe deserialisation, SQL built from strings, credentials in source), they do not prove
a vulnerability. Each rule names the languages it applies to (None: every file, e.g. credentials).
"""

# ruff: noqa: E501 - one rule per line reads as a table

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lighthouse.validation.rules import analyze_command

JS = ("javascript", "typescript", "tsx")
_SQL = r"(?i:\b(select\s.+\sfrom|insert\s+into|update\s+\w+\s+set|delete\s+from)\b)"


@dataclass(frozen=True)
class Finding:
    line: int
    rule: str
    severity: str  # block | deny | risk (the gate's), or warn (the code rules')
    message: str


@dataclass(frozen=True)
class Rule:
    rule: str
    languages: tuple[str, ...] | None
    pattern: re.Pattern[str]
    message: str
    unless: re.Pattern[str] | None = None


def _rule(rule: str, languages: tuple[str, ...] | None, pattern: str, message: str, unless: str = "") -> Rule:
    return Rule(rule, languages, re.compile(pattern), message, re.compile(unless) if unless else None)


RULES: tuple[Rule, ...] = (
    _rule("dynamic_code", ("python",), r"(?<![\w.])(eval|exec)\s*\(", "eval/exec runs code built at run time"),
    _rule("dynamic_code", JS, r"(?<![\w.])eval\s*\(|new\s+Function\s*\(", "eval / new Function runs code built at run time"),
    _rule("shell_true", ("python",), r"subprocess\.\w+\(.*shell\s*=\s*True", "subprocess with shell=True: the string goes to a shell"),
    _rule("shell_true", ("python",), r"\bos\.(system|popen)\s*\(", "os.system/os.popen run a shell"),
    _rule("shell_exec", JS, r"\b(exec|execSync)\s*\(\s*[`'\"]?.*(\$\{|\+)", "child_process exec of a built string runs a shell"),
    _rule("shell_exec", ("go",), r"exec\.Command\(\s*\"(sh|bash)\"\s*,\s*\"-c\"", "exec.Command(\"sh\", \"-c\", ...) runs a shell"),
    _rule("shell_exec", ("rust",), r"Command::new\(\s*\"(sh|bash)\"\s*\)", "Command::new(\"sh\") runs a shell"),
    _rule("shell_exec", ("java",), r"Runtime\.getRuntime\(\)\.exec\(", "Runtime.exec runs a command line"),
    _rule("unsafe_deserialization", ("python",), r"\b(c?pickle|dill|marshal)\.loads?\s*\(", "pickle.loads runs code from the data it reads"),
    _rule("unsafe_deserialization", ("java",), r"\bnew\s+ObjectInputStream\s*\(|\.readObject\s*\(", "Java deserialisation runs code from the data it reads"),
    _rule("yaml_unsafe_load", ("python",), r"\byaml\.(load|load_all)\s*\(", "yaml.load without a safe loader builds arbitrary objects",
          unless=r"Loader\s*=\s*(yaml\.)?(C?SafeLoader|BaseLoader)"),
    _rule("yaml_unsafe_load", ("python",), r"\byaml\.unsafe_load\s*\(", "yaml.unsafe_load builds arbitrary objects"),
    _rule("sql_string_building", ("python",), rf"(f[\"'].*{_SQL}.*\{{|[\"'].*{_SQL}.*[\"']\s*(%|\+|\.format\())", "SQL built by string formatting: use query parameters"),
    _rule("sql_string_building", JS, rf"`.*{_SQL}.*\$\{{|[\"'].*{_SQL}.*[\"']\s*\+", "SQL built from a template or concatenation: use query parameters"),
    _rule("sql_string_building", ("go",), rf"fmt\.Sprintf\(\s*\".*{_SQL}", "SQL built with fmt.Sprintf: use query parameters"),
    _rule("sql_string_building", ("rust",), rf"format!\(\s*\".*{_SQL}", "SQL built with format!: use query parameters"),
    _rule("sql_string_building", ("java",), rf"\".*{_SQL}.*\"\s*\+", "SQL built by concatenation: use a PreparedStatement"),
    _rule("hardcoded_credential", None,
          r"(?i)\b[\w.]*(password|passwd|secret|api_?key|access_?key|auth_?token|private_?key)\w*[\"']?\s*[:=]+\s*[\"'][^\"'\s$%{}<>]{6,}[\"']",
          "a credential written in the source", unless=r"(?i)(example|placeholder|changeme|dummy|xxxx|getenv|environ)"),
    _rule("hardcoded_credential", None, r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", "an AWS access key id in the source"),
    _rule("hardcoded_credential", None, r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----", "a private key in the source"),
)  # fmt: skip


def code_findings(language: str | None, content: bytes) -> list[Finding]:
    findings: list[Finding] = []
    text = content.decode("utf-8", "replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > 4000:
            continue  # minified or generated: nothing a reviewer reads line by line
        for rule in RULES:
            if rule.languages is not None and language not in rule.languages:
                continue
            if rule.pattern.search(line) and not (rule.unless and rule.unless.search(line)):
                findings.append(Finding(number, rule.rule, "warn", rule.message))
    return findings


def shell_findings(statements: Sequence[tuple[int, str]]) -> list[Finding]:
    """The Bash gate's findings for each statement of a shell file (paths judged from a neutral cwd)."""
    findings: list[Finding] = []
    for line, command in statements[:2000]:
        analysis = analyze_command(command[:10_000], "/project", "/home/agent")
        findings.extend(Finding(line, f.rule, f.severity, f.reason) for f in analysis.findings)
    return findings
