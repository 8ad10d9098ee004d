"""The one command path: load a stream's state, decide, append at the version read, and on a lost
race decide again on the fresh state — a bounded number of times, with a short jittered pause.

`decide(state, command)` is pure: it returns the events the command causes (an empty list means
"already done": nothing is written), or raises the LighthouseError that says why the command is
refused. Everything non-deterministic (ids, salts, the time, the principal) travels in the command,
so a retry re-decides with the same values.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from lighthouse.errors import ConcurrencyError
from lighthouse.events.model import StoredEvent
from lighthouse.events.recorders import Action, AlongsideRefused
from lighthouse.events.store import EventStore, Fold
from lighthouse.events.types import Event

S = TypeVar("S")
C = TypeVar("C")

DEFAULT_ATTEMPTS = 5


@dataclass(frozen=True)
class Outcome(Generic[S]):
    """The state after the command, its version, and what the command appended (maybe nothing)."""

    state: S
    version: int
    appended: list[StoredEvent]


class Inline(Protocol[S]):
    """A read model written in the same transaction as every append to its streams (an inline
    projection). It holds the stream's state and version, so a command loads it with one read
    instead of the stream, and a caller reads its own write at once.

    `writes` must make the state document's write conditional on the version it was loaded at:
    a refused write is then a lost race, retried like one.
    """

    def load(self, stream_id: str) -> tuple[S, int]: ...

    def writes(self, stream_id: str, before: tuple[S, int], after: tuple[S, int]) -> list[Action]: ...


def backoff(attempt: int) -> float:
    """Seconds to pause before attempt `attempt + 1`: a few tens of milliseconds, jittered."""
    return random.uniform(0.005, 0.02 * (2**attempt))


def execute(
    store: EventStore,
    stream_id: str,
    fold: Fold[S],
    decide: Callable[[S, C], Sequence[Event]],
    command: C,
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    metadata: dict[str, Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    loaded: tuple[S, int] | None = None,
    inline: Inline[S] | None = None,
    alongside: Sequence[Action] = (),
) -> Outcome[S]:
    """Run `command` against the stream; `loaded` skips the first load when the caller has the state.

    With `inline`, the state is loaded from that read model and the model is written in the append's
    transaction. `alongside` are the caller's own writes in that transaction (a nonce, a check that
    another stream exists); if one of them is refused, its AlongsideRefused is raised to the caller.

    Raises
    ------
    ConcurrencyError
        The stream kept changing for `attempts` tries; `details` names the stream and the attempts.
    """

    def load() -> tuple[S, int]:
        return inline.load(stream_id) if inline is not None else store.load_state(stream_id, fold)

    state, version = loaded if loaded is not None else load()
    for attempt in range(attempts):
        events = list(decide(state, command))
        if not events:
            return Outcome(state, version, [])
        appended = _append(store, stream_id, fold, (state, version), events, metadata, inline, alongside)
        if appended is not None:
            return appended
        if attempt == attempts - 1:
            break
        sleep(backoff(attempt))
        state, version = load() if inline is not None else store.catch_up(stream_id, fold, state, version)
    raise ConcurrencyError(
        f"stream {stream_id!r} kept changing; gave up after {attempts} attempts",
        {"stream_id": stream_id, "attempts": attempts},
    )


def _append(
    store: EventStore,
    stream_id: str,
    fold: Fold[S],
    before: tuple[S, int],
    events: list[Event],
    metadata: dict[str, Any] | None,
    inline: Inline[S] | None,
    alongside: Sequence[Action],
) -> Outcome[S] | None:
    """One try at appending at the version read: the outcome, or None if another writer got there first."""
    state, version = before
    prepared = store.prepare(stream_id, events, expected_version=version, metadata=metadata)
    after = state
    for stored in prepared:
        after = fold.evolve(after, stored)
    own = inline.writes(stream_id, before, (after, prepared[-1].version)) if inline else []
    try:
        store.commit(prepared, [*own, *alongside])
    except AlongsideRefused as refused:
        if not any(refused.action is write for write in own):
            raise  # the caller's own write was refused: its error, not a conflict
        return None  # the read model moved on: another writer appended
    except ConcurrencyError:
        return None
    return Outcome(after, prepared[-1].version, prepared)


def append_at_end(
    store: EventStore,
    stream_id: str,
    events: Sequence[Event],
    *,
    attempts: int = 30,
    metadata: dict[str, Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[StoredEvent]:
    """Append events whose order relative to other writers does not matter (telemetry, a log).

    Not a disguised retry loop of a decision: these events depend on no state, so appending them at
    whatever the end is now is correct.
    """
    for attempt in range(attempts):
        version = store.current_version(stream_id)
        try:
            return store.append(stream_id, events, expected_version=version, metadata=metadata)
        except ConcurrencyError:
            sleep(backoff(min(attempt, 3)))
    raise ConcurrencyError(
        f"stream {stream_id!r} kept changing; gave up after {attempts} attempts",
        {"stream_id": stream_id, "attempts": attempts},
    )
