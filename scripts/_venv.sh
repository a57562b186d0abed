# Sourced by scripts/run and scripts/test (from the repo root). Not executable.

# ensure_venv REQUIREMENTS_FILE: create .venv with Python >= 3.11 if it is missing or
# broken, then pip install the pinned requirements (quick when nothing changed).
ensure_venv() {
    local req="$1" py="${PYTHON:-}"
    if ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        if [ -z "$py" ]; then
            for candidate in python3.11 python3 python; do
                if command -v "$candidate" >/dev/null 2>&1; then py="$candidate"; break; fi
            done
        fi
        if [ -z "$py" ] || ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "error: Python 3.11 or newer is needed (python3.11 or python3 on PATH, or set PYTHON)" >&2
            return 1
        fi
        echo "Creating .venv with $("$py" -V 2>&1) ..." >&2
        "$py" -m venv --clear .venv
    fi
    .venv/bin/python -m pip install --disable-pip-version-check -q -r "$req"
}

# ensure_docker_compose: install Debian's docker-compose (used by tests/test_compose.py to
# validate docker-compose.yml without a Docker engine) when it is missing. Skipped when
# it is already installed or RELAY_SKIP_APT=1; never fatal here (the test reports it).
ensure_docker_compose() {
    if command -v docker-compose >/dev/null 2>&1 || [ "${RELAY_SKIP_APT:-0}" = 1 ]; then
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo="none"; fi
    fi
    if [ "$sudo" = none ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "note: docker-compose is missing and apt-get cannot run here: tests/test_compose.py" \
             "will be skipped (and fail under CI=true)" >&2
        return 0
    fi
    echo "Installing docker-compose (Debian package) to validate docker-compose.yml ..." >&2
    if ! { $sudo apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends docker-compose; } >&2; then
        echo "warning: could not install docker-compose with apt-get" >&2
    fi
}

# ensure_chromium: install Debian's chromium (the browser tests in tests/browser drive
# /usr/bin/chromium with Playwright; `playwright install` is never used) when it is
# missing. Skipped when it is already installed or RELAY_SKIP_APT=1; `apt-get update`
# runs only when apt does not know the package yet or the first install fails; never
# fatal here (the browser tests skip, and fail under CI=true).
ensure_chromium() {
    if [ -x /usr/bin/chromium ] || [ "${RELAY_SKIP_APT:-0}" = 1 ]; then
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo="none"; fi
    fi
    if [ "$sudo" = none ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "note: /usr/bin/chromium is missing and apt-get cannot run here: tests/browser" \
             "will be skipped (and fail under CI=true)" >&2
        return 0
    fi
    echo "Installing chromium (Debian package) for the browser tests ..." >&2
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium)
    if ! apt-cache show chromium >/dev/null 2>&1; then
        $sudo apt-get update -qq >&2 || true
    fi
    if ! $sudo "${install[@]}" >&2; then
        if ! { $sudo apt-get update -qq && $sudo "${install[@]}"; } >&2; then
            echo "warning: could not install chromium with apt-get" >&2
        fi
    fi
}
