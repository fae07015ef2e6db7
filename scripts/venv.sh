# Sourced by the other scripts: make .venv (Python 3.11+) and install a requirements file.
# Usage: REQUIREMENTS=requirements.txt . scripts/venv.sh
set -eu
cd "$(dirname "$0")/.."

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "matrixhs needs Python 3.11 or newer (none found on PATH)." >&2
    return 1
}

if [ ! -x .venv/bin/python ]; then
    PYTHON=$(find_python)
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        # Debian and Ubuntu ship the venv module in a separate package.
        VENV_PKG="$("$PYTHON" -c 'import sys; print("python3.%d-venv" % sys.version_info[1])')"
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get install -y -q python3-venv "$VENV_PKG" >/dev/null
        elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
            sudo apt-get install -y -q python3-venv "$VENV_PKG" >/dev/null
        else
            echo "Cannot create a virtualenv: install the venv module (apt install $VENV_PKG)." >&2
            exit 1
        fi
        "$PYTHON" -m venv .venv
    fi
fi
STAMP=".venv/.installed-$(basename "$REQUIREMENTS")"
if [ ! -f "$STAMP" ] || [ "$REQUIREMENTS" -nt "$STAMP" ] || [ requirements.txt -nt "$STAMP" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS"
    touch "$STAMP"
fi
