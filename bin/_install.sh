# Install one requirement set into .venv unless that exact set is installed already (sourced by
# _setup.sh; tests/notifications_project/test_packaging.py runs it with a stand-in pip). Usage: _install.sh requirements-X.txt
set -euo pipefail
REQUIREMENTS="$1"

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi

# A requirement file and every file it includes with -r, each once.
requirement_files() {
    local file="$1" included
    echo "$file"
    sed -n -E 's/^[[:space:]]*(-r|--requirement)[[:space:]=]+([^[:space:]#]+).*/\2/p' "$file" | while read -r included; do
        requirement_files "$(realpath -m --relative-to=. "$(dirname "$file")/$included")"
    done
}
# One stamp per requirement set, named after it and hashing its files (the included ones too): installing
# one set leaves the other sets' stamps alone, so the two commands work in either order.
set_files=$(requirement_files "$REQUIREMENTS" | sort -u)
set_name=$(basename "$REQUIREMENTS" .txt)
# shellcheck disable=SC2086
stamp=".venv/.installed-$set_name-$( { echo "$set_files"; cat $set_files; } | sha256sum | cut -c1-16)"
# uv installs a set in seconds where pip takes over a minute (README "Libraries, chosen by measurement");
# pip is the fallback where uv cannot be had or fails.
UV_VERSION="0.13.9"
install_set() {
    if [ -x .venv/bin/uv ] || .venv/bin/pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"; then
        if .venv/bin/uv pip install --quiet --python .venv/bin/python -r "$REQUIREMENTS"; then
            return 0
        fi
        echo "uv could not install $REQUIREMENTS: trying pip" >&2
    fi
    .venv/bin/pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
}
if [ ! -f "$stamp" ]; then
    if ! install_set >.venv/pip.log 2>&1; then
        grep -v "is ignored" .venv/pip.log >&2
        echo "installing $REQUIREMENTS failed (log: .venv/pip.log)" >&2
        exit 1
    fi
    rm -f ".venv/.installed-$set_name-"*
    touch "$stamp"
fi
