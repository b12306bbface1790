#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection in a temporary ansible_collections tree.
# Two work-arounds for machines that only reach the package registries:
#  1. ansible-test bootstraps pip in each sanity venv with a get-pip script it downloads from a host
#     outside the registries; a stand-in in its cache runs ensurepip and then pip from the configured index.
#  2. tests/output/ is git-ignored so ansible-test's own venvs never enter the scanned tree.
# Without pwsh, validate-modules cannot read a PowerShell module's argument spec and pslint cannot
# run; the copy then skips those two tests for the PowerShell files (tests/unit/plugins/modules/
# test_powershell_modules.py parses every .ps1 with tree-sitter and checks its $spec instead). The
# repository itself carries no such ignore, so a machine with pwsh runs both tests in full.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=$root/.venv/bin

pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',*$/\1/p" "$root"/.venv/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -n 1)
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
cat > "$cache/get_pip_${pip_version//./_}.py" <<'PY'
"""Stand-in for ansible-test's downloaded get-pip script: ensurepip, then pip from the configured index."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade"], check=True, stdout=subprocess.DEVNULL)
sys.exit(subprocess.run([sys.executable, "-m", "pip", "install", *args], check=False).returncode)
PY

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/snowrpa/robot_certs
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- ./ "$dest/"
cd "$dest"
if ! command -v pwsh >/dev/null 2>&1; then
    ignore=tests/sanity/ignore-$("$bin/python" -c 'import ansible; print(".".join(ansible.__version__.split(".")[:2]))').txt
    mkdir -p tests/sanity
    git -C "$root" ls-files -co --exclude-standard 'plugins/*.ps1' 'plugins/*.psm1' | while read -r file; do
        case "$file" in
            plugins/modules/*) printf '%s validate-modules!skip\n%s pslint!skip\n' "$file" "$file" ;;
            *) printf '%s pslint!skip\n' "$file" ;;
        esac
    done >>"$ignore"
fi
py=$("$bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
log=$work/sanity.log
# ansible-test prints every pip install of its per-test venvs; keep the test lines and any failure.
if "$bin/ansible-test" sanity --venv --python "$py" --color no "$@" >"$log" 2>&1; then
    grep -E '^(Running sanity test|WARNING: (Reviewing|Required program))' "$log" || true
else
    grep -vE '^( +|Collecting|Downloading|Installing|Successfully|Looking in|Using cached|Attempting|Found existing|Uninstalling|Requirement already)' "$log" >&2
    exit 1
fi
