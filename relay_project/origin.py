"""Origin check of WebSocket handshakes (PROTOCOL.md "Origin").

A handshake whose Origin host is not in DJANGO_ALLOWED_HOSTS is refused (HTTP 403),
compared as Django compares hosts. A handshake without Origin (non-browser clients)
passes here; the auth middleware then accepts it only with a header or query token.
"""
from channels.security.websocket import OriginValidator
from django.conf import settings


class AllowedHostsOrNoOriginValidator(OriginValidator):
    """channels' AllowedHostsOriginValidator, except that a missing Origin is let through."""

    def __init__(self, application):
        super().__init__(application, settings.ALLOWED_HOSTS)

    def valid_origin(self, parsed_origin):
        return parsed_origin is None or self.validate_origin(parsed_origin)
