#!/usr/bin/env bash
# `make bench`: the collection against the plain-cryptography floor and the community.crypto chain,
# side by side in one run; writes bench/results.md and bench/issue-time.png. Not part of `make test`.
# community.crypto comes from the `ansible` package, installed into its own venv (bench/.venv-community)
# from bench/requirements-community-crypto.txt; rebuilt when that file changes.
# Settings (environment; defaults in bench/run.py): BENCH_PLAN (entries key:N:repeats[:floor], default
# "rsa:20:3 ecdsa:20:3 rsa:100:3 ecdsa:100:3 rsa:500:1 ecdsa:500:1"), BENCH_COMMUNITY_PLAN
# ("rsa:0 rsa:20 rsa:100 ecdsa:0 ecdsa:20"), BENCH_SIZES reported ("20 100 500"), BENCH_SNOW_SIZES ("20"), BENCH_FORKS (5).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=bench/.venv-community
stamp=$venv/.requirements.sha256
want=$(sha256sum bench/requirements-community-crypto.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/ansible-playbook" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bench: creating $venv from bench/requirements-community-crypto.txt"
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    log=$venv/pip-install.log
    if ! "$venv/bin/python" -m pip install -r bench/requirements-community-crypto.txt >"$log" 2>&1; then
        grep -v 'is ignored: it is neither a file nor a directory' "$log" | tail -n 20 >&2
        echo "bench: pip install failed; full log in $log" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi

exec .venv/bin/python bench/run.py
