#!/usr/bin/python
# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402
"""List the CA records and user certificate mappings of a ServiceNow instance."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: snow_cert_info
short_description: List CA records and user certificate mappings with their certificates' facts
version_added: 0.1.0
description:
  - Returns the C(sys_ca_certificate) records and the C(sys_user_certificate) mappings, optionally only those of some
    users or some CAs, with subject, issuer, validity and, where the attached certificate was read, its SHA-256
    fingerprint and Windows thumbprint.
  - Records and attachment records are read in batched requests (large pages, IN queries); the certificates
    themselves are one download per record, which O(fetch_certificates=false) skips.
author:
  - snowrpa.robot_certs contributors (@snowrpa)
extends_documentation_fragment:
  - snowrpa.robot_certs.instance
options:
  ca_names:
    description:
      - Only these CA records, and only the mappings whose certificate they issued.
    type: list
    elements: str
  users:
    description:
      - Only the mappings of these users (C(user_name) or sys_id).
    type: list
    elements: str
  fetch_certificates:
    description:
      - Download each attached certificate to report its fingerprint and thumbprint and to find the CA that issued a
        mapping's certificate by signature. Without it, those are null and the CA is matched by issuer name.
    type: bool
    default: true
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module never changes anything.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - Needs role C(sso_config_admin) besides C(admin) to read the certificate tables [seen].
  - "Inferred facts [infer]: the column names of sys_ca_certificate and sys_user_certificate, the choice values
    (type ca_cert or intermediate_cert, client_cert; publish_status pending, exists or failed) and that the attachment
    hash is the SHA-256 of the attached bytes; they live in one table in plugins/module_utils/_snow_tables.py."
"""

EXAMPLES = r"""
---
- name: Read the robot mappings for the audit
  snowrpa.robot_certs.snow_cert_info:
    ca_names:
      - Robot CA
  register: snow_certs
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
cas:
  description: The CA records, in the instance's order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Record name.
      type: str
      sample: Robot CA
    sys_id:
      description: sys_id of the record (32 lower-case hex digits).
      type: str
    active:
      description: Whether the record is active.
      type: bool
    type:
      description: V(ca) or V(intermediate) (the stored value when it is neither C(ca_cert) nor C(intermediate_cert)).
      type: str
    publish_status:
      description: Publish status as stored, V(exists) once published.
      type: str
    subject:
      description: Subject as the instance extracted it (RFC 4514 string on the test instance).
      type: str
    issuer:
      description: Issuer as the instance extracted it.
      type: str
    valid_from:
      description: Start of validity as the instance stores it, C(YYYY-MM-DD HH:MM:SS) UTC.
      type: str
    valid_to:
      description: End of validity, C(YYYY-MM-DD HH:MM:SS) UTC.
      type: str
    attachment_hash:
      description: SHA-256 hex of the attached PEM; null without an attachment.
      type: str
    sha256_fingerprint:
      description: SHA-256 of the first attached certificate's DER, colon-separated upper-case hex; null when not read.
      type: str
      sample: "3F:2A:...:9C"
    thumbprint:
      description: SHA-1 of the first attached certificate's DER, 40 upper-case hex digits; null when not read.
      type: str
    certificates:
      description: >-
        Each attached certificate with C(subject), C(issuer), C(valid_from), C(valid_to), C(sha256_fingerprint) and
        C(thumbprint); empty when not read.
      type: list
      elements: dict
mappings:
  description: The user certificate mappings, in the instance's order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Record name.
      type: str
    sys_id:
      description: sys_id of the mapping record.
      type: str
    active:
      description: Whether the mapping is active.
      type: bool
    type:
      description: Stored type, V(client_cert).
      type: str
    user_name:
      description: C(user_name) of the mapped user.
      type: str
    user_sys_id:
      description: sys_id of the mapped user.
      type: str
    subject:
      description: Subject as the instance extracted it.
      type: str
    issuer:
      description: Issuer as the instance extracted it.
      type: str
    valid_from:
      description: Start of validity, C(YYYY-MM-DD HH:MM:SS) UTC.
      type: str
    valid_to:
      description: End of validity, C(YYYY-MM-DD HH:MM:SS) UTC.
      type: str
    attachment_hash:
      description: SHA-256 hex of the attached PEM; null without an attachment.
      type: str
    sha256_fingerprint:
      description: SHA-256 of the certificate's DER, colon-separated upper-case hex; null when not read.
      type: str
    thumbprint:
      description: Windows thumbprint, 40 upper-case hex digits; null when not read.
      type: str
    ca_name:
      description: Name of the CA record that issued the certificate; null when none of the listed CA records did.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_cert_info,
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
    argument_spec = {
        "instance": INSTANCE_ARGSPEC,
        "ca_names": {"type": "list", "elements": "str"},
        "users": {"type": "list", "elements": "str"},
        "fetch_certificates": {"type": "bool", "default": True},
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    require_cryptography(module)
    run_module(
        module,
        lambda: _snow_cert_info.run(
            module.params, SnowClient(module.params["instance"], check_mode=True), True
        ),
    )


if __name__ == "__main__":
    main()
