#!/usr/bin/python
# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cert_batch
short_description: Issue and export many robot identities in one task, in parallel on the controller
version_added: 0.1.0
description:
  - Runs a list of identities, each an optional M(snowrpa.robot_certs.cert_generate) step followed by an optional
    M(snowrpa.robot_certs.cert_export) step, with exactly the options and checks of those two modules.
  - Made for fleets. One task issues a whole wave of robots, so Ansible dispatches one task instead of several per robot,
    the issuer key is decrypted and checked once per worker instead of once per certificate, and a key made by the
    generate step goes to the export step without a second RSA consistency check.
  - The identities are independent and are spread over O(workers) processes forked from the controller process.
  - An identity that fails does not stop the others. With O(fail_on_error=false) the task succeeds and lists the failed ids
    with their one-line errors, so a play can fail just those robots (the robot_identity role does).
  - Runs in the controller process only (action plugin); paths are on the controller.
author:
  - snowrpa.robot_certs contributors (@snowrpa)
extends_documentation_fragment:
  - snowrpa.robot_certs.cryptography_dep
options:
  items:
    description:
      - The identities, in the order their results are returned.
    type: list
    elements: dict
    required: true
    suboptions:
      id:
        description:
          - Name of the identity in the results, such as the robot's inventory name. Unique within the task.
        type: str
        required: true
      generate:
        description:
          - The options of M(snowrpa.robot_certs.cert_generate) for this identity (same names, defaults, checks and
            no_log handling). Left out, the identity is only exported.
        type: dict
      export:
        description:
          - The options of M(snowrpa.robot_certs.cert_export) for this identity (same names, defaults, checks and
            no_log handling). Runs after O(items[].generate) succeeded, and not at all when it failed.
          - Left out, the identity is only generated.
        type: dict
  workers:
    description:
      - How many processes share the identities. V(0) is one per CPU this controller process may use.
      - Fewer than four identities always run in the controller process itself.
    type: int
    default: 0
  fail_on_error:
    description:
      - Fail the task when any identity fails, with that identity's error.
      - V(false) reports failed identities in RV(failed_ids) and RV(items) and fails nothing.
    type: bool
    default: true
attributes:
  action:
    description: Indicates this has a corresponding action plugin, so some parts of the work run on the controller.
    support: full
    details: Runs in the controller process and the processes it forks; nothing runs on the target.
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Each step behaves as its module does in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff holds the steps' own diffs of the identities that change, keyed by id.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second run reports no change.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
notes:
  - Worker processes are made with C(fork), so this needs a POSIX controller (as Ansible itself does).
  - Two identities must not write the same file; that is refused before anything is written.
  - Files are written as the two modules write them (temp file, then rename), so an interrupted or killed batch
    leaves no half-written key or PKCS#12; a temp file left by a killed worker is removed by the next write of
    that file.
  - After Ctrl-C, C(ansible-playbook) ends but Ansible's worker for the running task may still finish it, and with
    it the rest of the batch. Wait for it to end before starting another run on the same files.
  - Passphrases inside O(items) are masked in the task result and its invocation as they are in the two modules.
seealso:
  - module: snowrpa.robot_certs.cert_generate
  - module: snowrpa.robot_certs.cert_export
"""

EXAMPLES = r"""
---
- name: Issue two robots' client certificates from the robot CA and export them
  snowrpa.robot_certs.cert_batch:
    items:
      - id: robot01
        generate:
          path: /srv/robots/robot01/client.crt
          privatekey_path: /srv/robots/robot01/client.key
          purpose: client_auth
          subject:
            common_name: robot01
          issuer_cert_path: /srv/robots/ca/robot-ca.crt
          issuer_privatekey_path: /srv/robots/ca/robot-ca.key
        export:
          certificate_path: /srv/robots/robot01/client.crt
          privatekey_path: /srv/robots/robot01/client.key
          chain_paths:
            - /srv/robots/ca/robot-ca.crt
          pem_path: /srv/robots/robot01/client.pem
          pkcs12_path: /srv/robots/robot01/client.p12
          pkcs12_passphrase: "{{ robot_pfx_passphrase }}"
      - id: robot02
        generate:
          path: /srv/robots/robot02/client.crt
          privatekey_path: /srv/robots/robot02/client.key
          purpose: client_auth
          subject:
            common_name: robot02
          issuer_cert_path: /srv/robots/ca/robot-ca.crt
          issuer_privatekey_path: /srv/robots/ca/robot-ca.key
        export:
          certificate_path: /srv/robots/robot02/client.crt
          privatekey_path: /srv/robots/robot02/client.key
          chain_paths:
            - /srv/robots/ca/robot-ca.crt
          pem_path: /srv/robots/robot02/client.pem
          pkcs12_path: /srv/robots/robot02/client.p12
          pkcs12_passphrase: "{{ robot_pfx_passphrase }}"
    fail_on_error: false
  register: robot_batch

- name: Fail the robots whose identity could not be issued
  ansible.builtin.fail:
    msg: "{{ robot_batch['items'][inventory_hostname].msg }}"
  when: inventory_hostname in robot_batch.failed_ids
"""

RETURN = r"""
items:
  description:
    - One entry per identity, keyed by O(items[].id).
    - C(changed) and C(failed) per identity; C(msg) with the one-line error of a failed identity (prefixed with the step,
      C(generate) or C(export)); C(generate) and C(export) with what that module returns, plus its C(changed).
  returned: always
  type: dict
  sample:
    robot01:
      changed: true
      failed: false
      generate:
        changed: true
        path: /srv/robots/robot01/client.crt
        thumbprint: 3F2A9C0D4E5B6A7980F1E2D3C4B5A69788776655
      export:
        changed: true
        pkcs12_path: /srv/robots/robot01/client.p12
        thumbprint: 3F2A9C0D4E5B6A7980F1E2D3C4B5A69788776655
changed_ids:
  description: Ids of the identities that changed something (a failed identity whose generate step wrote files included).
  returned: always
  type: list
  elements: str
  sample: [robot01]
failed_ids:
  description: Ids of the identities that failed, in item order (only with O(fail_on_error=false); otherwise the task fails).
  returned: always
  type: list
  elements: str
  sample: []
workers:
  description: How many processes ran the identities.
  returned: always
  type: int
  sample: 2
"""
