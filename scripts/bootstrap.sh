#!/usr/bin/env bash
# Sets up a fresh Debian machine for this repository: the Debian packages the tests call,
# a virtual environment with the pinned Python requirements, and the in-place collection link.
# Safe to re-run: every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Debian packages used by the independent checks (openssl, keytool, osslsigncode) and the tooling
# (rsync copies the tree for ansible-test, shellcheck backs its shell sanity test).
debs=(openssl osslsigncode openjdk-17-jre-headless git rsync ca-certificates shellcheck)
missing=()
for pkg in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bootstrap: missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Virtual environment with the pinned requirements; rebuilt when requirements.txt changes.
python=${PYTHON:-python3}
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: creating .venv from requirements.txt"
    "$python" -m venv .venv
    log=.venv/pip-install.log
    if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -r requirements.txt; } >"$log" 2>&1; then
        grep -v 'is ignored: it is neither a file nor a directory' "$log" | tail -n 20 >&2
        echo "bootstrap: pip install failed; full log in $log" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi

# The collection, usable in place: ansible.cfg points collections_path at .collections.
mkdir -p .collections/ansible_collections/snowrpa
link=.collections/ansible_collections/snowrpa/robot_certs
if [ "$(readlink "$link" 2>/dev/null)" != "$root" ]; then
    rm -f "$link"
    ln -s "$root" "$link"
fi
