"""Reading the relay's settings from the environment, strictly (settings.py uses it).

:class:`Env` is django-environ's reader with one difference: a value that is not of its
setting's kind raises ``ImproperlyConfigured`` with one sentence naming the variable and
the value (``RELAY_EVENTS_MAX_BYTES='abc' is not an integer``), instead of a ValueError
from inside django-environ or, for booleans and numbers, a guess (django-environ reads
``DJANGO_DEBUG=maybe`` as false and ``RELAY_HEARTBEAT_SECONDS=2x0`` as 20).
:func:`exit_on_bad_settings` turns that error into one line and exit status 1 for the
entry points (manage.py, relay_project.serve).
"""
import math
import sys
import warnings

import environ
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset(environ.Env.BOOLEAN_TRUE_STRINGS)  # true on ok y yes 1
FALSE_WORDS = frozenset({"false", "off", "n", "no", "0", ""})
KINDS = {int: "an integer", float: "a number", bool: "true or false"}


class Env(environ.Env):
    """django-environ's Env whose int, float and bool reads refuse what is not one."""

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        """The variable's value cast to `cast`; ImproperlyConfigured names it when it is
        not of that kind."""
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ValueError:
            raise ImproperlyConfigured(f"{var}={self.ENVIRON.get(var)!r} is not {KINDS.get(cast, 'valid')}") from None

    @classmethod
    def parse_value(cls, value, cast):
        """As django-environ's, except that a bool is one of TRUE_WORDS or FALSE_WORDS
        (any case) and a float is what Python's float() reads, finite; else ValueError."""
        if cast is bool and isinstance(value, str):
            word = value.strip().lower()
            if word not in TRUE_WORDS | FALSE_WORDS:
                raise ValueError(value)
            return word in TRUE_WORDS
        if cast is float and isinstance(value, str):
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
        return super().parse_value(value, cast)

    def choice(self, var: str, choices: tuple[str, ...], default: str) -> str:
        """One of `choices` (compared without case; returned as spelled in `choices`)."""
        value = self.str(var, default=default)
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
        raise ImproperlyConfigured(f"{var}={value!r} is not one of {', '.join(choices)}")

    def db_url(self, var: str = environ.Env.DEFAULT_DATABASE_ENV, default=environ.Env.NOTSET, engine=None) -> dict:
        """django-environ's database URL config, refused when its scheme is no database
        (instead of django-environ's warning and a config Django fails on later)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            config = super().db_url(var, default=default, engine=engine)
        if config.get("ENGINE") not in set(self.DB_SCHEMES.values()):
            raise ImproperlyConfigured(f"{var}={self.ENVIRON.get(var, default)!r} is not a database URL "
                                       "(sqlite:////path/db.sqlite3, postgres://user:password@host/name, ...)")
        return config

    db = db_url


def exit_on_bad_settings() -> None:
    """Load Django's settings; when they are improperly configured, print `error: <why>`
    on stderr and exit 1 (one line, no traceback)."""
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - reading one setting loads them all
    except ImproperlyConfigured as exc:
        sys.exit(f"error: {exc}")
