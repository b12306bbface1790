#!/usr/bin/env bash
# The main job on the embedded default: the example fleet of examples/inventory.yml.
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
.venv/bin/ansible-playbook -i examples/inventory.yml playbooks/provision.yml
