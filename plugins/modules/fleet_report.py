#!/usr/bin/python
# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_report
short_description: Audit a robot fleet's certificates and write a JSON and a self-contained HTML report
version_added: 0.1.0
description:
  - Reads every robot's client-authentication and code-signing certificate and the robot CA certificate from the
    controller's files, compares them with the ServiceNow records (the result of M(snowrpa.robot_certs.snow_cert_info))
    and with what each robot's Windows host holds (results of M(snowrpa.robot_certs.win_cert_info)), and lists every
    problem found, most severe first, each in plain words with the robot it concerns and what to do.
  - "Problems found: certificate expired or expiring within O(warn_days); certificate file missing on the controller, or
    unreadable or damaged; robot CA not registered, inactive or not published in ServiceNow; ServiceNow mapping missing, inactive or for a
    different certificate; Windows host unreachable or its check failed; certificate not installed on the robot or a
    different one installed; private key missing on the robot; robot account without Read on the client key, or with
    Full control."
  - A source that was left out (no O(servicenow_facts), no O(robots[].windows_facts)) is reported as a note (severity
    V(info)) saying it was not checked, never as a problem; the page's headline names what was checked and what was not.
  - Writes the report as JSON (O(json_path)) and as one HTML page (O(html_path)) with summary counts, the problems and a
    timeline of expiry dates per robot with today's date and the warning window marked. The page has inline CSS and SVG,
    no scripts and no external links, so it can be mailed or archived as it is.
  - Runs on the controller, in the controller process (action plugin); it never connects to the robots itself.
author:
  - snowrpa.robot_certs contributors (@snowrpa)
options:
  robots:
    description:
      - One entry per robot.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The robot's name in the report, normally its C(inventory_hostname). Must be unique.
        type: str
        required: true
      snow_user:
        description: The user_name of the robot's ServiceNow service account (C(robot_snow_user)).
        type: str
      windows_account:
        description:
          - The robot's Windows account (C(robot_windows_account)), as C(DOMAIN\\user) or C(user). Its explicit access to
            the client certificate's private key is checked; group membership does not count.
        type: str
      client_cert_path:
        description:
          - The controller's file with the robot's client-authentication certificate (PEM or DER). When it holds a chain, the
            first certificate is the robot's.
          - A file that is missing or unreadable is reported as a problem, not a failure.
        type: path
      code_signing_cert_path:
        description: As O(robots[].client_cert_path), for the code-signing certificate.
        type: path
      windows_host:
        description:
          - Whether the robot has a Windows host to check. V(false) skips the Windows checks for this robot
            (C(robot_windows_host=false) in the inventory).
        type: bool
        default: true
      windows_facts:
        description:
          - The registered result of M(snowrpa.robot_certs.win_cert_info) for this robot, including a failed or
            unreachable result (run it with C(ignore_unreachable) and C(failed_when=false)).
          - A list of such results is accepted too (one per store, as C(playbooks/audit.yml) passes them).
          - An unreachable result is reported as "Windows host unreachable", a failed one (also one registered with
            C(failed_when=false), which keeps its C(msg)) as "Windows check failed".
          - Omitted, V({}) or skipped means the host was not checked - a note "Windows host not checked" (severity
            V(info)), no Windows problem. Ignored when O(robots[].windows_host=false).
          - Any other value must be a dict with C(store) and the list C(certificates) (the RETURN of
            M(snowrpa.robot_certs.win_cert_info)), or a list of them; a value of another shape fails the task, naming the
            robot.
        type: raw
  ca_cert_path:
    description:
      - The controller's file with the robot CA certificate (the first certificate of the file is used).
    type: path
  servicenow_facts:
    description:
      - The registered result of M(snowrpa.robot_certs.snow_cert_info) (run once for the fleet).
      - Omitted, V({}) or skipped gives one note "ServiceNow not checked" (severity V(info)) and no mapping or CA
        registration checks.
      - Failed or unreachable (also registered with C(failed_when=false), which keeps its C(msg)) gives one warning
        "ServiceNow check failed" with the first line of the message, and no mapping or CA registration checks.
      - Any other value must be a dict with the lists C(cas) and C(mappings) (the RETURN of
        M(snowrpa.robot_certs.snow_cert_info)); a value of another shape fails the task.
    type: raw
  warn_days:
    description:
      - A certificate that expires in fewer than this many days is reported as expiring (a warning); one already expired is
        an error.
    type: int
    default: 30
  now:
    description:
      - The moment the report is made for, as ISO 8601 (V(2026-05-01) or V(2026-05-01T12:00:00Z); without a zone, UTC).
      - Defaults to the start of the current day in UTC, so the report only changes from one day to the next or when the
        fleet changes. Set it to audit as of another date, or in tests.
    type: str
  json_path:
    description:
      - Where to write the report as JSON on the controller. Not written when omitted.
      - Written only when its content changes, mode C(0644); missing folders are created.
    type: path
  html_path:
    description:
      - Where to write the report as HTML on the controller. Not written when omitted.
      - Written only when its content changes, mode C(0644); missing folders are created.
    type: path
  title:
    description: The heading of the HTML page and the C(title) of the JSON document.
    type: str
    default: Robot certificate audit
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the work happen on the controller.
    support: full
    details: Runs in the controller process; the files are read and written on the controller.
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Builds the report and returns it, and reports whether the files would change, without writing them.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff is the JSON report before and after.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second run reports no change.
    support: full
    details:
      - The output depends only on the inputs and O(now) (by default the current day), so a re-run on the same day with
        nothing changed in the fleet reports no change and writes nothing.
notes:
  - The report is a snapshot of the facts given; it does not contact ServiceNow or the robots itself. The playbook
    C(playbooks/audit.yml) collects the facts and calls this module once for the fleet.
  - A ServiceNow record is matched to a controller certificate by its SHA-1 thumbprint when the record carries one, else by
    subject, issuer and expiry date.
  - A robot CA record counts as published when its C(publish_status) is V(exists), and a mapping's user is matched by
    C(user_name). These column names and values are [infer] (ServiceNow does not document the tables
    C(sys_ca_certificate) and C(sys_user_certificate); see docs/servicenow-api.md); they are read in one place,
    C(plugins/module_utils/_report.py) C(servicenow_from_info).
  - On Windows, the client certificate is looked for in C(LocalMachine\\My) and the code-signing certificate in the robot
    user's C(CurrentUser\\My). Only certificates with the robot's subject count when telling "a different certificate"
    from "not installed", since those stores hold unrelated certificates too.
  - Key ACL rights are compared as certlm's "Manage Private Keys" masks, Read C(0x80120089) and Full control C(0xD01F01FF),
    with generic rights mapped to the specific key rights they grant, as M(snowrpa.robot_certs.win_key_acl) does.
  - Severities are C(error) (the robot cannot log in or sign now, or cannot be checked), C(warning) (it will break soon,
    has more rights than it needs, or ServiceNow could not be read) and C(info) (a source was left out and not checked;
    not a problem, it changes neither C(summary.status) nor the robots' problem counts).
seealso:
  - module: snowrpa.robot_certs.snow_cert_info
  - module: snowrpa.robot_certs.win_cert_info
  - module: snowrpa.robot_certs.cert_generate
"""

EXAMPLES = r"""
---
- name: Write the fleet report from facts collected earlier in the play
  snowrpa.robot_certs.fleet_report:
    robots:
      - name: robot01
        snow_user: svc.robot01
        windows_account: CORP\svc-robot01
        client_cert_path: /srv/robot-certs/robot01/client.pem
        code_signing_cert_path: /srv/robot-certs/robot01/codesign.pem
        windows_facts: "{{ hostvars['robot01'].robot_windows_certs }}"
      - name: robot02
        snow_user: svc.robot02
        client_cert_path: /srv/robot-certs/robot02/client.pem
        code_signing_cert_path: /srv/robot-certs/robot02/codesign.pem
        windows_host: false
    ca_cert_path: /srv/robot-certs/ca/robot-ca.crt
    servicenow_facts: "{{ snow_certs }}"
    warn_days: 45
    json_path: /srv/reports/robot-certs.json
    html_path: /srv/reports/robot-certs.html
  run_once: true
  register: audit

- name: Fail the job when a robot needs action
  ansible.builtin.assert:
    that: audit.summary.findings.error == 0
    fail_msg: "{{ audit.summary.findings.error }} problems need action; see /srv/reports/robot-certs.html"
"""

RETURN = r"""
changed:
  description: Whether the JSON or HTML file was (or in check mode would be) written.
  returned: always
  type: bool
summary:
  description: The counts at the top of the report.
  returned: always
  type: dict
  contains:
    robots:
      description: Robots audited.
      type: int
    robots_ok:
      description:
        - Robots without any problem (notes of severity V(info) do not count); none while a fleet-wide error (the robot CA)
          stops every robot.
      type: int
    robots_with_problems:
      description: Robots with at least one problem (V(error) or V(warning)) of their own.
      type: int
    findings:
      description: "Number of findings per severity: C(error), C(warning), C(info) (notes of what was not checked)."
      type: dict
    fleet_problems:
      description: Problems (V(error) or V(warning)) that concern the whole fleet, such as the robot CA or ServiceNow.
      type: int
    status:
      description: V(error), V(warning) or V(ok), the most severe problem found; V(info) notes leave it V(ok).
      type: str
    fleet_blocked:
      description: Whether a fleet-wide error (the robot CA) affects every robot.
      type: bool
    expiring:
      description: Certificates expiring within O(warn_days).
      type: int
    expired:
      description: Certificates already expired.
      type: int
    unreachable:
      description: Windows hosts that could not be checked.
      type: int
  sample:
    robots: 5
    robots_ok: 3
    robots_with_problems: 2
    findings: {error: 2, warning: 1, info: 0}
    fleet_problems: 0
    status: error
    fleet_blocked: false
    expiring: 1
    expired: 0
    unreachable: 1
findings:
  description:
    - Every problem and note, most severe first (V(info) last), then fleet-wide before per-robot, then by robot name.
  returned: always
  type: list
  elements: dict
  contains:
    severity:
      description: V(error), V(warning) or V(info).
      type: str
    kind:
      description: A stable identifier of the problem, for example V(mapping_missing) or V(key_acl_no_read).
      type: str
    robot:
      description: The robot it concerns; null for fleet-wide problems.
      type: str
    certificate:
      description: V(client), V(code_signing), V(ca), or null.
      type: str
    title:
      description: The problem in a few words.
      type: str
    message:
      description: What is wrong, as one sentence.
      type: str
    action:
      description: What to do about it.
      type: str
  sample:
    - severity: error
      kind: mapping_missing
      robot: robot03
      certificate: client
      title: Mapping missing in ServiceNow
      message: ServiceNow user 'svc.robot03' has no certificate mapping at all; the robot cannot log in with mutual TLS.
      action: Run playbooks/provision.yml for this robot (role servicenow_cba maps its client certificate).
report:
  description:
    - The whole JSON document, as written to O(json_path) - C(schema_version), C(title), C(now), C(warn_days), C(summary),
      C(ca), C(servicenow), C(robots) (per robot its certificates with expiry and days left, mapping and Windows status, its
      number of problems and of notes) and C(findings).
  returned: always
  type: dict
json_path:
  description: The JSON file, as given.
  returned: always
  type: str
  sample: /srv/reports/robot-certs.json
html_path:
  description: The HTML file, as given.
  returned: always
  type: str
  sample: /srv/reports/robot-certs.html
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _report
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._module_runner import (
    run_module,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=_report.ARGUMENT_SPEC, supports_check_mode=True
    )

    run_module(
        module,
        lambda: _report.run(module.params, check_mode=module.check_mode),
    )


if __name__ == "__main__":
    main()
