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

# apt_install_if_missing WHAT-FOR CHECK PACKAGE...: when the shell command CHECK fails,
# install the Debian PACKAGEs (as root, or with passwordless sudo). Skipped when
# RELAY_SKIP_APT=1; `apt-get update` runs only when apt does not know a package yet or
# the first install fails; never fatal here (the tests that need it skip locally and
# fail under CI=true).
apt_install_if_missing() {
    local what_for="$1" check="$2"
    shift 2
    if eval "$check" || [ "${RELAY_SKIP_APT:-0}" = 1 ]; then
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo="none"; fi
    fi
    if [ "$sudo" = none ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "note: $* missing and apt-get cannot run here: $what_for will be skipped (and fail under CI=true)" >&2
        return 0
    fi
    echo "Installing $* (Debian packages) for $what_for ..." >&2
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@")
    if ! apt-cache show "$@" >/dev/null 2>&1; then
        $sudo apt-get update -qq >&2 || true
    fi
    if ! $sudo "${install[@]}" >&2; then
        if ! { $sudo apt-get update -qq && $sudo "${install[@]}"; } >&2; then
            echo "warning: could not install $* with apt-get" >&2
        fi
    fi
}

# docker-compose validates docker-compose.yml in tests/test_compose.py (no engine needed).
ensure_docker_compose() {
    apt_install_if_missing "tests/test_compose.py" "command -v docker-compose >/dev/null 2>&1" docker-compose
}

# Debian's chromium (driven by Playwright in tests/browser; `playwright install` is never
# used) and a colour emoji font, so pages and screenshots show emoji.
ensure_chromium() {
    apt_install_if_missing "tests/browser" \
        "[ -x /usr/bin/chromium ] && [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]" \
        chromium fonts-noto-color-emoji
}
