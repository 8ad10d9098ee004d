"""Combine expert votes with a rule that tolerates faulty or malicious experts.

A decision needs at least 2/3 of the counted votes. With four or more votes, an expert whose vote
agrees with fewer than 30 % of the others is an outlier: flagged, recorded, and not counted (if
that would discard everyone, nobody is discarded). Fewer than two votes, or no 2/3 agreement:
escalate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

ExpertDecision = Literal["approve", "block", "modify", "escalate"]
THRESHOLD = Fraction(2, 3)
OUTLIER_SIMILARITY = 0.3
MIN_VOTES = 2
MIN_VOTES_FOR_FILTERING = 4


@dataclass(frozen=True)
class Vote:
    expert: str
    decision: ExpertDecision
    confidence: float
    reasoning: str = ""
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsensusResult:
    decision: Literal["approved", "blocked", "escalate"]
    expert_decision: ExpertDecision | None
    reached: bool
    agreement: float
    confidence: float
    counted: tuple[str, ...]
    outliers: tuple[str, ...] = ()
    distribution: dict[str, int] = field(default_factory=dict)
    reason: str = ""


_OUTCOMES: dict[str, Literal["approved", "blocked", "escalate"]] = {
    "approve": "approved",
    "block": "blocked",
    "modify": "blocked",  # the call as written must not run; the suggestions say what would
    "escalate": "escalate",
}


def consensus(votes: Sequence[Vote], threshold: Fraction = THRESHOLD) -> ConsensusResult:
    distribution = dict(Counter(str(v.decision) for v in votes))
    if len(votes) < MIN_VOTES:
        reason = f"only {len(votes)} expert vote(s); at least {MIN_VOTES} are needed"
        experts = tuple(v.expert for v in votes)
        return ConsensusResult("escalate", None, False, 0.0, 0.0, experts, distribution=distribution, reason=reason)
    counted, outliers = _counted(votes)
    top, supporters = _leader(counted)
    agreement = Fraction(len(supporters), len(counted))
    confidence = round(sum(v.confidence for v in supporters) / len(supporters), 4)
    experts = tuple(v.expert for v in counted)
    flagged = f"; outliers not counted: {', '.join(outliers)}" if outliers else ""
    share = f"{len(supporters)}/{len(counted)}"
    if agreement < threshold:
        reason = f"no 2/3 agreement ({share} for {top}){flagged}"
        return ConsensusResult(
            "escalate", None, False, float(agreement), confidence, experts, outliers, distribution, reason
        )
    reason = f"{share} experts voted {top}{flagged}{_suggested(top, supporters)}"
    return ConsensusResult(
        _OUTCOMES[top], top, True, float(agreement), confidence, experts, outliers, distribution, reason
    )


def _leader(counted: Sequence[Vote]) -> tuple[ExpertDecision, list[Vote]]:
    """The most common decision (ties go to the more cautious) and the votes for it."""
    tally = Counter(v.decision for v in counted)
    top, _ = max(tally.items(), key=lambda item: (item[1], _severity(item[0])))
    return top, [v for v in counted if v.decision == top]


def _suggested(top: ExpertDecision, supporters: Sequence[Vote]) -> str:
    if top != "modify":
        return ""
    suggestions = sorted({s for v in supporters for s in v.suggestions})
    return f"; suggested instead: {'; '.join(suggestions) or 'none given'}"


def _counted(votes: Sequence[Vote]) -> tuple[list[Vote], tuple[str, ...]]:
    """The votes that count, and the outliers left out (none if leaving them out would leave
    nobody)."""
    outliers = _outliers(votes) if len(votes) >= MIN_VOTES_FOR_FILTERING else []
    counted = [v for v in votes if v.expert not in outliers]
    if not counted or len(counted) == len(votes):
        return list(votes), ()
    return counted, tuple(outliers)


def _outliers(votes: Sequence[Vote]) -> list[str]:
    """Experts whose vote matches fewer than 30 % of the other votes."""
    flagged = []
    for vote in votes:
        others = [o for o in votes if o is not vote]
        similarity = sum(1 for o in others if o.decision == vote.decision) / len(others)
        if similarity < OUTLIER_SIMILARITY:
            flagged.append(vote.expert)
    return flagged


def _severity(decision: str) -> int:
    """Ties between equally common decisions go to the more cautious one."""
    return {"approve": 0, "modify": 1, "escalate": 2, "block": 3}[decision]
