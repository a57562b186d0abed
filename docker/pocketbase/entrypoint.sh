#!/bin/sh
# Creates/updates the superuser when PB_SUPERUSER_EMAIL and PB_SUPERUSER_PASSWORD are
# set (from .env), then runs the command (pocketbase serve).
set -eu
if [ -n "${PB_SUPERUSER_EMAIL:-}" ] && [ -n "${PB_SUPERUSER_PASSWORD:-}" ]; then
    pocketbase superuser upsert --dir /pb_data -- "$PB_SUPERUSER_EMAIL" "$PB_SUPERUSER_PASSWORD"
fi
exec "$@"
