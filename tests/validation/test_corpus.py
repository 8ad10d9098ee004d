"""The gate's default policy, with no experts, on the labelled corpus (issue #14): every answer right,
no dangerous call allowed, and disguises never turn a deny into an allow."""

from __future__ import annotations

import json
import shlex
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lighthouse.validation.catalog import DENY, EVERYDAY
from lighthouse.validation.policy import default_policies
from tests.validation import build_corpus
from tests.validation.scoring import answer_in_process, corpus, default_gate, score

GATE = default_gate()


def test_the_corpus_file_is_what_the_builder_writes() -> None:
    assert build_corpus.CORPUS.read_text() == build_corpus.render(), "run python -m tests.validation.build_corpus"


def test_the_corpus_is_large_and_covers_every_class() -> None:
    items = list(corpus())
    classes = {item["class"] for item in items}
    assert len(items) >= 1500
    assert set(DENY) - {"git_push_protected"} <= classes | {"recursive_delete_outside"}
    assert {"allow", "deny", "ask"} == {item["expect"] for item in items}


def test_every_case_of_the_corpus_gets_its_labelled_answer() -> None:
    result = score(lambda item: answer_in_process(GATE, item))
    summary = result.summary()
    by_class = {klass: dict(counts) for klass, counts in sorted(result.by_class.items())}
    print(f"corpus in-process: {json.dumps(summary)}")
    print(f"per class: {json.dumps(by_class)}")
    wrong = [f"{item['expect']}->{got}: {item['tool_input']} ({reason})" for item, got, reason in result.wrong[:20]]
    assert result.dangerous_allows == 0, wrong
    assert summary["deny_recall"] >= 0.98, wrong
    assert summary["allow_rate"] >= 0.98, wrong
    assert result.wrong == [], "\n".join(wrong)


def test_every_deny_names_its_rule_what_matched_and_an_alternative() -> None:
    denied = GATE.decide("a", "agent", "Bash", {"command": "sudo -u root git  push --force origin main"}, "/srv/p")
    assert denied.decision == "blocked"
    assert "git_push_force" in denied.reason
    assert "`git push --force origin main`" in denied.reason
    assert "--force-with-lease" in denied.reason


def test_every_deny_class_is_forbidden_by_a_shipped_policy() -> None:
    shipped = default_policies()
    for rule in DENY:
        assert f'"{rule}"' in shipped or rule == "git_push_protected", rule
    assert "permit-everyday-work" in shipped
    assert EVERYDAY


# ---- properties: disguises never turn a deny into an allow --------------------------------------

DENIED = [
    item["tool_input"]["command"]
    for item in corpus()
    if item["tool_name"] == "Bash" and item["expect"] == "deny" and item["variant"] == "plain"
]
LOOK_ALIKES = {"r": "\uff52", "m": "\uff4d", "g": "\uff47", "i": "\uff49", "t": "\uff54", "-": "\uff0d"}


def _wrap(command: str, wrapper: str) -> str:
    return {
        "sudo": f"sudo {command}",
        "env": f"env A=1 {command}",
        "command": f"command {command}",
        "nohup": f"nohup {command}",
        "bash": f"bash -c {shlex.quote(command)}",
        "subshell": f"({command})",
        "list": f"cd . && {command}",
        "pipe": f"echo | {command}",
    }[wrapper]


def _look_alike(command: str, count: int) -> str:
    changed, done = [], 0
    for char in command:
        if done < count and char in LOOK_ALIKES:
            changed.append(LOOK_ALIKES[char])
            done += 1
        else:
            changed.append(char)
    return "".join(changed)


@settings(max_examples=400, deadline=None)
@given(
    command=st.sampled_from(DENIED),
    wrappers=st.lists(
        st.sampled_from(["sudo", "env", "command", "nohup", "bash", "subshell", "list", "pipe"]), max_size=3
    ),
    spaces=st.sampled_from([" ", "  ", "\t", " \t "]),
    look_alikes=st.integers(min_value=0, max_value=3),
)
def test_quotes_wrappers_whitespace_and_look_alikes_never_make_a_denied_command_allowed(
    command: str, wrappers: list[str], spaces: str, look_alikes: int
) -> None:
    disguised = _look_alike(command, look_alikes).replace(" ", spaces) if "\n" not in command else command
    assert unicodedata.normalize("NFKC", disguised) != disguised or look_alikes == 0 or disguised == command
    for wrapper in wrappers:
        disguised = _wrap(disguised, wrapper)
    decided = GATE.decide("p", "agent", "Bash", {"command": disguised}, build_corpus.CWD, {"HOME": "/home/dev"})
    assert decided.decision != "approved", (disguised, decided.reason)


@pytest.mark.parametrize("command", ["rm -rf /tmp/x", "rm -rf $TMPDIR/cache", "rm -rf ${TMPDIR}/x"])
def test_the_requests_tmpdir_is_a_temp_dir_and_the_services_is_not(command: str) -> None:
    env = {"HOME": "/home/dev", "TMPDIR": "/var/folders/q1/T"}  # macOS's per-user temp dir
    assert GATE.decide("p", "agent", "Bash", {"command": command}, build_corpus.CWD, env).decision == "approved"
    elsewhere = GATE.decide("p", "agent", "Bash", {"command": "rm -rf /var/folders/q1/T/x"}, build_corpus.CWD)
    assert elsewhere.decision == "blocked"


@pytest.mark.parametrize("claimed", ["/", "/etc", "/home/dev", "/home/dev/project/..", "/srv"])
def test_an_agent_cannot_declare_any_directory_its_temp_dir(claimed: str) -> None:
    env = {"HOME": "/home/dev", "TMPDIR": claimed}
    decided = GATE.decide("p", "agent", "Bash", {"command": "rm -rf $TMPDIR/data"}, build_corpus.CWD, env)
    assert decided.decision != "approved", decided.reason
