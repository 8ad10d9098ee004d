"""Expert consensus: 2/3 agreement, outlier filtering from four votes up, escalation otherwise."""

from __future__ import annotations

from lighthouse.validation.consensus import Vote, consensus
from lighthouse.validation.logic import settled as _settled


def votes(*decisions: str) -> list[Vote]:
    return [Vote(expert=f"e{i}", decision=d, confidence=0.8) for i, d in enumerate(decisions)]  # type: ignore[arg-type]


def test_four_honest_blocks_outvote_two_byzantine_approvals_who_are_named() -> None:
    honest = [Vote(f"honest-{i}", "block", 0.9) for i in range(4)]
    byzantine = [Vote("byzantine-1", "approve", 1.0), Vote("byzantine-2", "approve", 1.0)]

    result = consensus([honest[0], byzantine[0], honest[1], honest[2], byzantine[1], honest[3]])

    assert result.decision == "blocked"
    assert result.reached is True
    assert set(result.outliers) == {"byzantine-1", "byzantine-2"}
    assert set(result.counted) == {f"honest-{i}" for i in range(4)}
    assert result.agreement == 1.0
    assert result.confidence == 0.9
    assert result.distribution == {"block": 4, "approve": 2}


def test_two_of_three_is_enough_and_nobody_is_filtered_below_four_votes() -> None:
    result = consensus(votes("approve", "approve", "block"))
    assert result.decision == "approved"
    assert result.reached is True
    assert result.outliers == ()
    assert round(result.agreement, 3) == 0.667


def test_a_split_panel_escalates() -> None:
    for split in (("approve", "block"), ("approve", "block", "modify"), ("approve", "approve", "block", "block")):
        result = consensus(votes(*split))
        assert result.decision == "escalate"
        assert result.reached is False
        assert "no 2/3 agreement" in result.reason


def test_fewer_than_two_votes_escalate() -> None:
    for few in ((), ("block",)):
        result = consensus(votes(*few))
        assert result.decision == "escalate"
        assert "at least 2" in result.reason


def test_modify_blocks_the_call_as_written_and_passes_the_suggestions_on() -> None:
    result = consensus([Vote("a", "modify", 0.7, suggestions=("use rm -rf build/ instead",)), Vote("b", "modify", 0.9)])
    assert result.decision == "blocked"
    assert result.expert_decision == "modify"
    assert "use rm -rf build/ instead" in result.reason


def test_when_everyone_looks_like_an_outlier_nobody_is_discarded() -> None:
    result = consensus(votes("approve", "block", "modify", "escalate"))
    assert result.outliers == ()
    assert result.decision == "escalate"


def test_ties_in_a_plurality_go_to_the_more_cautious_decision() -> None:
    result = consensus(votes("approve", "block"))
    assert result.decision == "escalate"  # 1/2 < 2/3 either way
    assert "for block" in result.reason


def test_a_round_is_settled_once_one_decision_holds_two_thirds_of_the_panel() -> None:
    assert _settled(votes("block", "block"), panel_size=3)
    assert not _settled(votes("block", "approve"), panel_size=3)
    assert not _settled(votes("block", "block", "block"), panel_size=5)
    assert _settled(votes("block", "block", "block", "block"), panel_size=6)
