#!/usr/bin/env bash
# The whole test suite, as CI runs it: linters, ansible-test sanity, then pytest (unit and integration).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"
"$bin/ruff" check .
"$bin/ruff" format --check .

echo "== ansible-lint (profile production)"
ansible-lint --offline -q

echo "== ansible-test sanity"
scripts/sanity.sh

echo "== pytest"
"$bin/pytest" -n 2 tests/unit tests/integration
