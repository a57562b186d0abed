"""What a session reads and writes besides its transport: the stores, the publish path,
the per-process write-behind batches, token verification and channel access.

`Services.real()` gives the running event loop's (Redis, NATS, the database); unit tests
build one from in-memory fakes (tests/unit/fakes.py), so the session's rules run
without servers.
"""
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from auth_pocketbase.verification import get_verifier
from messaging.deliver import behind
from messaging.publish.publish import start_publish
from messaging.state import access, backends, cursors, records


@dataclass
class Services:
    """A session's collaborators.

    - `history`: state.history.HistoryStore (page, newest_after, between, heads);
    - `registry`: state.subscriptions.Registry (subscribe, unsubscribe, subscriptions,
      open_connection, close_connection);
    - `start_publish(user, channel, text, client_id)`: publish.publish.start_publish;
    - `cursors`, `liveness`, `behind_checks`, `mirror`: the process's write-behind
      batches (state.writebehind.WriteBehind: note, discard, flush) of cursors,
      connection liveness, heartbeat checks (deliver/behind.py) and the SQL mirror;
    - `verify(token)`: the PocketBase token verifier's `verify`;
    - `policy_for(channel)` / `cached_policy(channel)` / `forget_policy(channel)`:
      state.access's lookups, and dropping a cached policy after a `revoked` event.
    """

    history: Any
    registry: Any
    start_publish: Callable[..., Awaitable]
    cursors: Any
    liveness: Any
    behind_checks: Any
    mirror: Any
    verify: Callable[[str], Awaitable]
    policy_for: Callable[[str], Awaitable[access.Policy]]
    cached_policy: Callable[[str], access.Policy | None]
    forget_policy: Callable[[str], None]

    @classmethod
    def real(cls) -> "Services":
        """The running event loop's services (call it on that loop)."""
        be = backends.get()
        return cls(
            history=be.history, registry=be.registry, start_publish=start_publish,
            cursors=cursors.cursors(), liveness=cursors.liveness(), behind_checks=behind.behind_checks(),
            mirror=records.mirror(), verify=get_verifier().verify,
            policy_for=access.policy_for, cached_policy=access.cached_policy, forget_policy=access.forget,
        )
