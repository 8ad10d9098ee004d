"""Cedar policies: the defaults validate; replacements are validated against the schema before they
take effect and are recorded as versions; a broken policy set never approves."""

from __future__ import annotations

import pytest

from lighthouse.clock import FixedClock
from lighthouse.composition import Components
from lighthouse.errors import ValidationFailed
from lighthouse.validation.policy import PolicyEngine, check_policies, default_policies
from lighthouse.validation.rules import analyze, resolve
from lighthouse.validation.service import PolicyStore
from lighthouse.validation.store import POLICY_STREAM
from tests.conftest import Provisioned

FORBID_GIT = '@id("no-git")\nforbid (principal, action, resource) when { context.command_class == "network" };\n'


def test_the_default_policies_validate_against_the_schema() -> None:
    check_policies(default_policies())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("permit(", "do not parse"),
        ("permit (principal, action, resource) when { context.no_such_fact };", "do not validate"),
        ('permit (principal in Lighthouse::Team::"x", action, resource);', "do not validate"),
        ("   ", "empty"),
        ("// " + "x" * 70_000, "larger than"),
    ],
)
def test_invalid_policies_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message) as refused:
        check_policies(text)
    if "validate" in message:
        assert refused.value.details["errors"]


def test_an_explicit_forbid_blocks_and_no_permit_escalates(tmp_path: object) -> None:
    engine = PolicyEngine(default_policies() + FORBID_GIT, version=2)
    facts = resolve(analyze("Bash", {"command": "git push"}, "/srv/p", "/home/u"), "/srv/p", ("/srv/p",), "/home/u")
    verdict = engine.evaluate("dev", "agent", facts)
    assert verdict.outcome == "forbid"
    assert verdict.policies == ("no-git",)
    facts = resolve(
        analyze("Bash", {"command": "docker run --rm alpine true"}, "/srv/p", "/home/u"),
        "/srv/p",
        ("/srv/p",),
        "/home/u",
    )
    assert PolicyEngine(default_policies()).evaluate("dev", "agent", facts).outcome == "no_permit"


def test_roles_are_cedar_groups() -> None:
    facts = resolve(analyze("Write", {"file_path": "a.py"}, "/srv/p", "/home/u"), "/srv/p", ("/srv/p",), "/home/u")
    engine = PolicyEngine(default_policies())
    assert engine.evaluate("dev", "agent", facts).outcome == "allow"
    assert engine.evaluate("pat", "human", facts).outcome == "no_permit"


def test_replacing_policies_records_a_version_that_takes_effect(parts: Components, provisioned: Provisioned) -> None:
    store = PolicyStore(parts.events, FixedClock(1000.0), refresh_seconds=60)
    assert store.engine().version == 0
    assert store.view().policies == default_policies()

    view = store.replace(default_policies() + FORBID_GIT, by="root")

    assert view.version == 1
    assert view.updated_by == "root"
    assert store.engine().version == 1
    events = parts.events.load(POLICY_STREAM)
    assert [e.type for e in events] == ["VALIDATION_POLICY_UPDATED"]
    # Another container picks the new version up from the stream.
    other = PolicyStore(parts.events, FixedClock(1000.0))
    assert other.engine().text.endswith(FORBID_GIT)


def test_an_invalid_replacement_changes_nothing(parts: Components, provisioned: Provisioned) -> None:
    store = PolicyStore(parts.events, FixedClock(1000.0))
    with pytest.raises(ValidationFailed):
        store.replace("forbid (principal, action, resource) when { context.nope };", by="root")
    assert parts.events.current_version(POLICY_STREAM) == 0
    assert store.engine().text == default_policies()
