"""Every Redis key and channel-layer group name the relay uses (PROTOCOL.md "Wiring"
and docs/design.md "State"). Channel and user ids are validated before they get here
(protocol/validation.py), so each is one safe key part.

| key | type | what |
|---|---|---|
| `relay:history:<C>` | stream | the channel's messages (state/history.py) |
| `relay:subscribers:<C>` | set | user ids subscribed to C: the publish fan-out list |
| `relay:subscriptions:<U>` | hash | channel -> cursor (decimal Unix ns, '' before any) |
| `relay:subgen:<U>` | counter | bumped by every subscribe and unsubscribe of U |
| `relay:connections:<U>` | sorted set | open connection ids -> expiry (Unix ms) |
| `relay:rate:<U>` | hash | the publish token bucket (tokens, last refill in µs) |
| `relay:idempotency:<U>:<C>:<client_id>` | hash | the first message of a client_id, for 10 minutes |

The page's login and sign-up throttles keep theirs under `relay:cache:` (Django's cache,
relay_project/settings.py); channels_redis names its own pub/sub channels.
"""


def history_key(channel: str) -> str:
    """The channel's Redis Stream: `relay:history:<channel>`, one entry per message, the
    entry id being its ts (protocol/timestamps.py)."""
    return f"relay:history:{channel}"


def subscribers_key(channel: str) -> str:
    """The set of user ids subscribed to the channel (read atomically with each store)."""
    return f"relay:subscribers:{channel}"


def subscriptions_key(userid: str) -> str:
    """The user's subscriptions: hash channel -> cursor (decimal ns, '' = null)."""
    return f"relay:subscriptions:{userid}"


def generation_key(userid: str) -> str:
    """The user's subscription generation: a counter that every subscribe and
    unsubscribe of the user bumps, so that a late `unsubscribed` notice never ends a
    newer subscription."""
    return f"relay:subgen:{userid}"


def connections_key(userid: str) -> str:
    """The user's open connections: sorted set connection id -> expiry (Unix ms)."""
    return f"relay:connections:{userid}"


def rate_key(userid: str) -> str:
    """The user's publish token bucket (hash: tokens, and the last refill in µs)."""
    return f"relay:rate:{userid}"


def idempotency_key(userid: str, channel: str, client_id: str | None) -> str:
    """The first message of a (user, channel, client_id) publish."""
    return f"relay:idempotency:{userid}:{channel}:{client_id or ''}"


def user_group(userid: str) -> str:
    """The channel-layer group of all connections of a user: `user.<userid>`."""
    return f"user.{userid}"
