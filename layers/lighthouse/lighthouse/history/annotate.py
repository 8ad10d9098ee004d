"""The `current` view's annotations: AST anchors from tree-sitter and security findings.

Grammars come from pinned per-language wheels that bundle their compiled parsers (nothing is
downloaded at run time; the all-languages pack weighs 184 MB, past what a Lambda package holds).
An anchor's id hashes its kind, its qualified name and its rank among same-named definitions, never
its line, so it stays the same when code above it moves. Shell files are annotated by the same
rules that gate Bash calls; code by a small rule set per language (security_rules.py).
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

from tree_sitter import Language, Node, Parser

from lighthouse.history.security_rules import Finding, code_findings, shell_findings

# language -> (module, function returning the grammar)
GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "bash": ("tree_sitter_bash", "language"),
    "yaml": ("tree_sitter_yaml", "language"),
    "json": ("tree_sitter_json", "language"),
    "toml": ("tree_sitter_toml", "language"),
}
EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java", ".sh": "bash", ".bash": "bash", ".zsh": "bash",
    ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml",
}  # fmt: skip
# The line comment of each language; JSON has none, so its anchors are listed in the header only.
COMMENT = {"python": "#", "bash": "#", "yaml": "#", "toml": "#", "json": ""} | dict.fromkeys(
    ("javascript", "typescript", "tsx", "go", "rust", "java"), "//"
)
# node type -> anchor kind, per language ("method" when nested in a class-like node).
DEFINITIONS: dict[str, dict[str, str]] = {
    "python": {"function_definition": "function", "class_definition": "class"},
    "javascript": {"function_declaration": "function", "generator_function_declaration": "function",
                   "class_declaration": "class", "method_definition": "method"},
    "go": {"function_declaration": "function", "method_declaration": "method", "type_spec": "type"},
    "rust": {"function_item": "function", "struct_item": "struct", "enum_item": "enum", "trait_item": "trait",
             "impl_item": "impl", "mod_item": "module"},
    "java": {"class_declaration": "class", "interface_declaration": "interface", "enum_declaration": "enum",
             "record_declaration": "record", "method_declaration": "method", "constructor_declaration": "constructor"},
    "bash": {"function_definition": "function"},
}  # fmt: skip
DEFINITIONS["typescript"] = DEFINITIONS["tsx"] = DEFINITIONS["javascript"] | {
    "interface_declaration": "interface", "type_alias_declaration": "type", "enum_declaration": "enum",
    "abstract_class_declaration": "class",
}  # fmt: skip
CLASS_LIKE = {"class_definition", "class_declaration", "abstract_class_declaration", "impl_item", "trait_item",
              "interface_declaration", "class_body", "enum_declaration", "record_declaration"}  # fmt: skip
MAX_PARSE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Anchor:
    anchor_id: str
    kind: str
    name: str
    line: int  # 1-based, in the file as stored
    indent: str


@dataclass(frozen=True)
class Annotated:
    language: str | None
    anchors: list[Anchor]
    findings: list[Finding]
    parse_errors: bool


def language_of(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1]
    if name in ("Dockerfile",) or "." not in name:
        return "bash" if name.endswith(("rc", "profile")) and name.startswith(".") else None
    return EXTENSIONS.get("." + name.rsplit(".", 1)[-1].lower())


@cache
def parser(language: str) -> Parser:
    module, function = GRAMMARS[language]
    return Parser(Language(getattr(importlib.import_module(module), function)()))


def annotate(path: str, content: bytes) -> Annotated:
    language = language_of(path)
    if language is None or len(content) > MAX_PARSE_BYTES:
        return Annotated(language, [], code_findings(None, content), False)
    tree = parser(language).parse(content)
    anchors = _anchors(language, tree.root_node, content)
    if language == "bash":
        findings = shell_findings(_shell_statements(tree.root_node)) + code_findings(language, content)
    else:
        findings = code_findings(language, content)
    return Annotated(language, anchors, sorted(findings, key=lambda f: f.line), tree.root_node.has_error)


def _anchors(language: str, root: Node, content: bytes) -> list[Anchor]:
    found: list[tuple[str, str, int]] = []  # (kind, qualified name, line)
    if language in DEFINITIONS:
        _definitions(root, DEFINITIONS[language], [], found)
    elif language in ("yaml", "json", "toml"):
        _keys(language, root, found)
    lines = content.split(b"\n")
    seen: dict[tuple[str, str], int] = {}
    anchors: list[Anchor] = []
    for kind, qualified, line in found:
        rank = seen.get((kind, qualified), 0)
        seen[(kind, qualified)] = rank + 1
        digest = hashlib.sha256(f"{kind}\0{qualified}\0{rank}".encode()).hexdigest()[:12]
        text = lines[line - 1].decode("utf-8", "replace") if line - 1 < len(lines) else ""
        indent = text[: len(text) - len(text.lstrip())]
        anchors.append(Anchor(f"{kind[:3]}-{digest}", kind, qualified, line, indent))
    return anchors


def _name(node: Node) -> str:
    named = node.child_by_field_name("name") or node.child_by_field_name("type")
    if named is None or named.text is None:
        return "<anonymous>"
    return named.text.decode("utf-8", "replace")


def _definitions(node: Node, kinds: dict[str, str], scope: list[str], found: list[tuple[str, str, int]]) -> None:
    for child in node.children:
        kind = kinds.get(child.type)
        inner = scope
        if kind is not None:
            if kind == "function" and _in_class(child):
                kind = "method"
            name = _name(child)
            found.append((kind, ".".join([*scope, name]), child.start_point.row + 1))
            inner = [*scope, name]
        _definitions(child, kinds, inner, found)


def _in_class(node: Node) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.type in CLASS_LIKE:
            return True
        if parent.type.endswith(("function_definition", "function_item", "function_declaration")):
            return False
        parent = parent.parent
    return False


def _keys(language: str, root: Node, found: list[tuple[str, str, int]]) -> None:
    """Top-level keys (and TOML tables): what a reader of a config file navigates by. The first key
    on each branch is an anchor; the keys nested in its value are not."""
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        anchor = _config_anchor(node)
        if anchor is not None:
            found.append((*anchor, node.start_point.row + 1))
        if node.type not in PAIRS:
            stack.extend(reversed(node.children))
    found.sort(key=lambda item: item[2])


PAIRS = ("block_mapping_pair", "flow_pair", "pair")
TABLES = ("table", "table_array_element")


def _config_anchor(node: Node) -> tuple[str, str] | None:
    if node.type in PAIRS:
        named = node.child_by_field_name("key")
        kind = "key"
    elif node.type in TABLES:
        named = next((c for c in node.children if c.type in ("bare_key", "dotted_key", "quoted_key")), None)
        kind = "table"
    else:
        return None
    if named is None or named.text is None:
        return None
    return kind, named.text.decode("utf-8", "replace").strip("\"'")


def _shell_statements(root: Node) -> list[tuple[int, str]]:
    """(line, text) of each outermost command, pipeline or list: what one Bash call would hold."""
    statements: list[tuple[int, str]] = []
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if node.type in ("command", "pipeline", "list", "redirected_statement") and node.text is not None:
            statements.append((node.start_point.row + 1, node.text.decode("utf-8", "replace")))
            continue
        stack.extend(reversed(node.children))
    return statements
