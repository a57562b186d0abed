"""Log formatting: one JSON object per line in production, readable lines in development.

Records may carry `channel`, `user` and `message_id` (pass them in `extra=`); they are
fields of the JSON object. RedactTokens keeps PocketBase tokens (JWTs) out of every
log line, whatever code logged them.
"""
import logging
import re

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+")


class RedactTokens(logging.Filter):
    """Replace anything shaped like a JWT in the message and its arguments with [token]."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "eyJ" in message:
            record.msg = _JWT.sub("[token]", message)
            record.args = None
        return True


def config(json_lines: bool, level: str) -> dict:
    """The LOGGING dict: JSON lines (python-json-logger) or plain text, tokens redacted."""
    formatter = (
        {"()": "pythonjsonlogger.json.JsonFormatter",
         "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
         "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}}
        if json_lines else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactTokens}},
        "formatters": {"main": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "main", "filters": ["redact"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.channels.server": {"level": "WARNING"}},
    }
