"""What the route wrapper needs from the rest of the platform, injected by each function's wiring."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from lighthouse.auth.tokens import Principal


@dataclass
class Guards:
    """What the wrapper needs from the outside, resolved on first use (nothing at import)."""

    authenticate: Callable[[str | None], Principal]
    # Charges the caller's general request budget (routes whose service has its own limit skip it).
    charge: Callable[[Principal], None]
    # A long-poll's admission: the context in which it may block, taking a lease (at most a few
    # open waits per agent and in all) only if and when it does.
    waiting: Callable[[Principal, int], AbstractContextManager[None]]
    # An operator's ceiling on every route's body limit (a route's own limit applies below it).
    max_body_ceiling: int = 10 * 1024 * 1024
