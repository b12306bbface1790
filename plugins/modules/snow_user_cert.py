#!/usr/bin/python
# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402
"""Map robot certificates to ServiceNow users."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: snow_user_cert
short_description: Map client certificates to ServiceNow users, for a whole fleet in one call
version_added: 0.1.0
description:
  - Ensures C(sys_user_certificate) records map each robot's client certificate to its service account, so the robot
    logs in with mutual TLS as that user. The instance accepts such a login only while the mapping is active and its
    certificate chains to an active, published CA record (see M(snowrpa.robot_certs.snow_ca_register)).
  - Takes one mapping (O(user), O(name), O(pem_path) or O(pem_content)) or a list in O(mappings). Look-ups are
    batched - an unchanged run for N mappings costs about ceil(N/180) + 3 requests plus one per active CA record.
  - Idempotent by certificate, not by name - a mapping with the same certificate is left alone, a new PEM under the
    same name replaces the old record once the new one is in place, and the diff shows old and new fingerprints.
author:
  - snowrpa.robot_certs contributors (@snowrpa)
extends_documentation_fragment:
  - snowrpa.robot_certs.instance
options:
  user:
    description:
      - The user (C(user_name) or sys_id) of a single mapping. Ignored when O(mappings) is given.
    type: str
  name:
    description:
      - Name of the single mapping record. Defaults to the certificate's common name.
    type: str
  pem_path:
    description:
      - Path to the PEM certificate of the single mapping, read where the task runs. Mutually exclusive with O(pem_content).
      - The robot's certificate, optionally followed by the CA certificates that issued it, in order (the chain file
        that M(snowrpa.robot_certs.cert_export) writes to its C(pem_path)). Only the first certificate is mapped.
    type: path
  pem_content:
    description:
      - PEM text of the certificate of the single mapping, optionally followed by its issuers as for O(pem_path).
      - Not logged, so a private key pasted here by mistake never reaches the output.
    type: str
  active:
    description:
      - Whether the single mapping is active.
    type: bool
    default: true
  mappings:
    description:
      - Several mappings at once; each item takes the keys of the single-mapping options.
    type: list
    elements: dict
    suboptions:
      user:
        description: The user (C(user_name) or sys_id).
        type: str
        required: true
      name:
        description: Name of the mapping record. Defaults to the certificate's common name.
        type: str
      pem_path:
        description: Path to the PEM certificate, optionally followed by its issuers (only the first is mapped).
        type: path
      pem_content:
        description: PEM text of the certificate (not logged).
        type: str
      active:
        description: Whether the mapping is active.
        type: bool
        default: true
  exclusive:
    description:
      - What to do with the user's other mappings whose certificate comes from the same CA (rotation) - V(none) keeps
        them, V(deactivate) sets them inactive, V(remove) deletes them. It happens only after every new mapping is in place.
    type: str
    choices: [none, deactivate, remove]
    default: none
  registered_ca_content:
    description:
      - PEM text of CA certificates that the caller has just registered and seen published, for instance the
        O(snowrpa.robot_certs.snow_ca_register#module:pem_content) of a M(snowrpa.robot_certs.snow_ca_register) task
        with O(snowrpa.robot_certs.snow_ca_register#module:wait_for_publish=true) earlier in the same play.
      - A certificate issued by one of them counts as chaining to an active, published CA record without reading the
        instance's CA records, which saves their look-up and the download of each CA certificate on every run. A
        certificate issued by any other CA is still checked against the instance's records.
      - Without it (the default), the instance's active CA records are read whenever a mapping is created or kept.
      - Used only with O(state=present). Every certificate in it must be a CA certificate.
    type: str
  state:
    description:
      - V(present) ensures the mappings; V(absent) deletes the user's mappings of that name, and those holding the
        given certificate. With the certificate alone (no name), only the mappings holding it go, whatever their name.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: No write is sent in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - A PEM holding a private key is refused before any request; the attachment holds the certificate only.
  - A PEM with several certificates is accepted only as the robot's certificate followed by the CAs that issued it,
    each signed by the next; any other extra certificate is refused before any request.
  - A certificate without the client authentication EKU (a code-signing certificate, say) and a CA certificate are
    refused before any request - a certificate without that EKU is never sent in the TLS handshake, so the mapping
    could never log in. Map the robot's client_auth certificate.
  - Mappings that stay unchanged are checked too - when the CA record that issued them was replaced by another CA,
    deactivated or is not published, the task fails naming the mappings, since the instance refuses their logins.
    Re-issue their certificates from the registered CA, or register their CA again.
  - An expired certificate, an unknown user, and a certificate that no active, published CA record issued are
    refused before anything is written. Register the CA with M(snowrpa.robot_certs.snow_ca_register) first.
  - New records are made by attaching the PEM to a chosen sys_id, then inserting the record with that sys_id [seen];
    when any step fails, every record and attachment this run created is deleted again.
  - O(registered_ca_content) is taken at the caller's word - a CA record changed by someone else between the
    registration and this task is not seen for the certificates it issued. Leave it out to check the instance itself.
  - RV(other_mappings) lists what O(exclusive) could act on, whatever their CA, so that a caller can skip a later
    O(exclusive) run when it is empty (the snowrpa.robot_certs.servicenow_cba role's retire step does).
  - Needs role C(sso_config_admin) besides C(admin) [seen].
  - "Inferred facts [infer]: column names of sys_user_certificate - name, user, active, type, subject, issuer,
    valid_from, valid_to; choice value type client_cert; sys_ca_certificate publish_status exists once published; the
    attachment hash is the SHA-256 of the attached bytes. They live in one table in plugins/module_utils/_snow_tables.py."
seealso:
  - module: snowrpa.robot_certs.snow_ca_register
  - module: snowrpa.robot_certs.snow_cert_info
"""

EXAMPLES = r"""
---
- name: Map every robot's certificate to its service account
  snowrpa.robot_certs.snow_user_cert:
    mappings: "{{ robot_mappings }}"
    exclusive: deactivate
  delegate_to: localhost
  run_once: true

- name: Register the robot CA and wait until it is published
  snowrpa.robot_certs.snow_ca_register:
    name: Robot CA
    pem_path: pki/robot-ca.crt
    wait_for_publish: true
  delegate_to: localhost
  run_once: true

- name: Map the fleet, checking it against the CA just registered
  snowrpa.robot_certs.snow_user_cert:
    mappings: "{{ robot_mappings }}"
    registered_ca_content: "{{ lookup('ansible.builtin.file', 'pki/robot-ca.crt') }}"
  delegate_to: localhost
  run_once: true

- name: Map one certificate
  snowrpa.robot_certs.snow_user_cert:
    user: svc_robot01
    name: robot01 mTLS
    pem_path: pki/robot01.pem
  delegate_to: localhost
"""

RETURN = r"""
mappings:
  description: One entry per mapping asked for, in order (for O(state=absent), the records removed).
  returned: success
  type: list
  elements: dict
  contains:
    action:
      description: V(created), V(replaced), V(updated), V(unchanged) or V(removed).
      type: str
    sys_id:
      description: sys_id of the mapping record (in check mode, of the record that would be created).
      type: str
    name:
      description: Record name.
      type: str
    user:
      description: The user as given, or its C(user_name).
      type: str
    user_sys_id:
      description: sys_id of the user.
      type: str
    active:
      description: Whether the mapping is active.
      type: bool
    subject:
      description: Certificate subject (RFC 4514).
      type: str
    issuer:
      description: Certificate issuer (RFC 4514).
      type: str
    valid_from:
      description: Start of validity, C(YYYY-MM-DD HH:MM:SS) UTC.
      type: str
    valid_to:
      description: End of validity, C(YYYY-MM-DD HH:MM:SS) UTC.
      type: str
    sha256_fingerprint:
      description: SHA-256 of the DER certificate, colon-separated upper-case hex.
      type: str
    thumbprint:
      description: Windows thumbprint, 40 upper-case hex digits.
      type: str
    attachment_hash:
      description: SHA-256 hex of the attached PEM.
      type: str
deactivated:
  description: The user's other mappings from the same CA that O(exclusive=deactivate) set inactive.
  returned: success
  type: list
  elements: dict
removed:
  description: Mappings deleted (replaced records, and those O(exclusive=remove) deleted).
  returned: success
  type: list
  elements: dict
other_mappings:
  description:
    - The users' mappings other than those this call ensured or removed, as they are after the run (in check mode, as
      they would be), from any CA. Empty when no user has another mapping, so a later O(exclusive) run would do nothing.
  returned: success
  type: list
  elements: dict
  contains:
    user:
      description: The user as given in the call.
      type: str
    sys_id:
      description: sys_id of the mapping record.
      type: str
    name:
      description: Record name.
      type: str
    active:
      description: Whether the mapping is active.
      type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_user_cert,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._module_runner import (
    require_cryptography,
    run_module,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._snow_client import (
    INSTANCE_ARGSPEC,
    SnowClient,
)


def main() -> None:
    mapping_spec = {
        "user": {"type": "str", "required": True},
        "name": {"type": "str"},
        "pem_path": {"type": "path"},
        "pem_content": {"type": "str", "no_log": True},
        "active": {"type": "bool", "default": True},
    }
    argument_spec = {
        "instance": INSTANCE_ARGSPEC,
        "user": {"type": "str"},
        "name": {"type": "str"},
        "pem_path": {"type": "path"},
        "pem_content": {"type": "str", "no_log": True},
        "active": {"type": "bool", "default": True},
        "mappings": {"type": "list", "elements": "dict", "options": mapping_spec},
        "exclusive": {
            "type": "str",
            "choices": list(_snow_user_cert.EXCLUSIVE_CHOICES),
            "default": "none",
        },
        "registered_ca_content": {"type": "str"},
        "state": {
            "type": "str",
            "choices": ["present", "absent"],
            "default": "present",
        },
    }
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("pem_path", "pem_content"), ("mappings", "user")],
        required_one_of=[("mappings", "user")],
        supports_check_mode=True,
    )
    require_cryptography(module)
    run_module(
        module,
        lambda: _snow_user_cert.run(
            module.params,
            SnowClient(module.params["instance"], check_mode=module.check_mode),
            module.check_mode,
        ),
    )


if __name__ == "__main__":
    main()
