#!/usr/bin/env bash
# The main job on the embedded default: provision the example fleet of examples/inventory.yml
# against the local ServiceNow test double, prove each robot's mutual-TLS login, write the fleet
# report, and say where everything is. Re-running it changes nothing (the recap shows changed=0).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export ANSIBLE_CONFIG="$root/ansible.cfg"
export PATH="$root/.venv/bin:$PATH"
# Keep the console to what happened: tasks a host skips are not listed (the recap still counts them).
export ANSIBLE_DISPLAY_SKIPPED_HOSTS=false

out=$root/demo-output
certs=$out/robot-certs
inventory=examples/inventory.yml
vault=(--vault-password-file examples/DEMO-ONLY-vault-password.txt)
mkdir -p "$out"
start=$SECONDS

# The test double activates the plugin in about a second; a real instance takes minutes (role default 10 s polls).
extra=(-e "robot_identity_output_dir=$certs" -e servicenow_cba_plugin_poll_interval=1)

double_pid=
stop_double() {
    if [ -n "$double_pid" ]; then
        kill "$double_pid" 2>/dev/null || true
        wait "$double_pid" 2>/dev/null || true
    fi
}
trap stop_double EXIT

ready=$out/instance/ready.json
rm -f "$ready"
mkdir -p "$out/instance"
python -m tests.servicenow_double --state-dir "$out/instance" --ready-file "$ready" >"$out/instance/server.log" 2>&1 &
double_pid=$!
for _ in $(seq 1 100); do
    [ -s "$ready" ] && break
    kill -0 "$double_pid" 2>/dev/null || { echo "demo: the ServiceNow test double did not start; see $out/instance/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -s "$ready" ] || { echo "demo: the ServiceNow test double is not ready after 10 s; see $out/instance/server.log" >&2; exit 1; }
# The helper reads the inventory from a pipe (it holds the decrypted demo secrets, so no file).
ansible-inventory -i "$inventory" "${vault[@]}" --list | python -c "$(cat <<'PY'
"""Create the demo robots' ServiceNow users on the test double (once) and write the extra vars."""
import base64
import json
import ssl
import sys
import urllib.parse
import urllib.request

ready = json.load(open(sys.argv[1], encoding="utf-8"))
inventory = json.load(sys.stdin)
hostvars = inventory["_meta"]["hostvars"]
users = sorted({hostvars[h]["robot_snow_user"] for h in inventory["robots"]["hosts"]})
context = ssl.create_default_context(cafile=ready["ca_path"])
auth = base64.b64encode(f"{ready['admin']['username']}:{ready['admin']['password']}".encode()).decode()


def call(method, path, body=None):
    request = urllib.request.Request(
        ready["url"] + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": "Basic " + auth, "Accept": "application/json", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:
        return json.load(answer)


query = urllib.parse.urlencode({"sysparm_query": "user_nameIN" + ",".join(users), "sysparm_fields": "user_name"})
existing = {row["user_name"] for row in call("GET", "/api/now/table/sys_user?" + query)["result"]}
missing = [u for u in users if u not in existing]
if missing:
    call("POST", "/_double/users", {"users": [{"user_name": u, "roles": ["sn_rpa_fdn.rpa_robot"]} for u in missing]})
    print(f"demo: created the robots' ServiceNow users on the test double: {', '.join(missing)}")
extra = {
    "servicenow_cba_instance": {
        "host": ready["host"],
        "username": ready["admin"]["username"],
        "password": ready["admin"]["password"],
        "ca_path": ready["ca_path"],
    },
    "mtls_url": ready["mtls_url"],
    "mtls_ca_path": ready["ca_path"],
}
with open(sys.argv[2], "w", encoding="utf-8") as handle:
    json.dump(extra, handle, indent=2)
PY
)" "$ready" "$out/instance.yml"
chmod 600 "$out/instance.yml"
extra+=(-e "@$out/instance.yml")

echo "== provision.yml for the five robots of $inventory"
ansible-playbook -i "$inventory" "${vault[@]}" playbooks/provision.yml "${extra[@]}" | tee "$out/provision.log"

echo "== mutual-TLS login as each robot"
ansible-playbook -i "$inventory" "${vault[@]}" examples/prove_mtls_login.yml "${extra[@]}" | tee "$out/mtls-login.log"

if [ -f playbooks/audit.yml ]; then
    echo "== audit.yml"
    ansible-playbook -i "$inventory" "${vault[@]}" playbooks/audit.yml "${extra[@]}" -e "robot_certs_report_dir=$out/report" | tee "$out/audit.log"
fi

recap=$(sed -n '/^PLAY RECAP/,$p' "$out/provision.log")
changed=$(grep -o 'changed=[0-9]*' <<<"$recap" | awk -F= '{ sum += $2 } END { print sum + 0 }')
echo
echo "== where things are"
echo "robot CA:            $certs/ca/robot-ca.crt"
echo "robot certificates:  $certs/<robot>/client.{crt,pem,p12} and codesign.{crt,pem,p12}"
echo "ServiceNow double:   state in $out/instance (stopped now; the next run reuses it)"
if [ -d "$out/report" ]; then
    find "$out/report" -maxdepth 1 -type f -printf 'fleet report:        %p\n'
fi
echo "logs:                $out/*.log"
if [ "$changed" = 0 ]; then
    echo "provision changed nothing (the recap shows changed=0): this was a re-run of a converged fleet"
else
    echo "provision made $changed changes; run make demo again and it changes nothing"
fi
echo "demo took $((SECONDS - start)) s"
