#!/usr/bin/python
# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402
"""Ensure a CA certificate record on a ServiceNow instance."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: snow_ca_register
short_description: Register a CA certificate for certificate-based login on ServiceNow
version_added: 0.1.0
description:
  - Ensures a C(sys_ca_certificate) record named O(name) holds the given CA certificate (a root, or a root plus
    intermediates), so that user mappings of certificates it issued are accepted - the instance accepts a mapping,
    and a robot's mutual TLS login, only when the certificate chains to an active CA record that is published.
  - The PEM goes in as an attachment; the instance reads subject, issuer and validity from it and publishes it.
  - Idempotent by certificate, not by name - the same certificate under the same name is left alone; a different
    PEM under the same name replaces the record (the old one is deleted once the new one is in place, and published
    when O(wait_for_publish) is set), and the diff shows the old and new fingerprints, subjects and validity.
author:
  - snowrpa.robot_certs contributors (@snowrpa)
extends_documentation_fragment:
  - snowrpa.robot_certs.instance
options:
  name:
    description:
      - Name of the CA record.
    type: str
    required: true
  pem_path:
    description:
      - Path to the PEM file of the CA certificate (several certificates for a chain). Read where the task runs.
      - Mutually exclusive with O(pem_content). A PEM holding a private key is refused before any request.
    type: path
  pem_content:
    description:
      - The PEM text of the CA certificate. Mutually exclusive with O(pem_path).
      - Not logged, so a private key pasted here by mistake never reaches the output.
    type: str
  type:
    description:
      - V(ca) for a CA Cert (synced to the load balancer, may hold the whole chain), V(intermediate) for an
        Intermediate Cert (instance only).
    type: str
    choices: [ca, intermediate]
    default: ca
  active:
    description:
      - Whether the record is active.
    type: bool
    default: true
  expiration_notification:
    description:
      - Whether the instance notifies before the certificate expires. Left as the instance has it when not set.
    type: bool
  warn_in_days:
    description:
      - Days before expiry that the notification goes out. Left as the instance has it when not set.
    type: int
  notify_users:
    description:
      - Users (user_name or sys_id) to notify. Left as the instance has it when not set.
    type: list
    elements: str
  wait_for_publish:
    description:
      - Wait until the record's publish status is C(exists) before returning; mappings are only accepted after that.
    type: bool
    default: true
  publish_timeout:
    description:
      - Seconds to wait for the publish status.
    type: int
    default: 300
  poll_interval:
    description:
      - Seconds between two reads of the publish status.
    type: float
    default: 2
  state:
    description:
      - V(present) ensures the record, V(absent) deletes every record of that name with its attachments.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: No write is sent in check mode; the publish status is not awaited.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - When a different PEM replaces the record and its CA has another subject or public key than the old one, the
    module counts, in one request, the active user mappings whose issuer is the old CA and warns that they will be
    refused until their certificates are re-issued; M(snowrpa.robot_certs.snow_user_cert) then fails for them.
  - Writing C(sys_ca_certificate) needs role C(sso_config_admin) besides C(admin) [seen], and the plugin
    C(com.glide.auth.mutual) (see M(snowrpa.robot_certs.snow_plugin)).
  - New records are made by attaching the PEM to a chosen sys_id, then inserting the record with that sys_id [seen];
    when any later step fails, the record and attachment this run created are deleted again.
  - The attached PEM is canonical (base64 wrapped at 64 columns), so its SHA-256 C(hash) identifies the certificate.
  - An expired CA certificate is refused before any request. A certificate without basicConstraints CA:TRUE is
    registered with a warning, since ServiceNow blocks self-signed certificates by default (KB0993615).
  - "Inferred facts [infer]: column names of sys_ca_certificate - name, active, type, format, expiration_notification,
    warn_in_days, notify_users, publish_status, subject, issuer, valid_from, valid_to; choice values - type ca_cert or
    intermediate_cert, format pem, publish_status pending, exists or failed; the attachment hash is the SHA-256 of the
    attached bytes. They live in one table in plugins/module_utils/_snow_tables.py."
seealso:
  - module: snowrpa.robot_certs.snow_user_cert
  - module: snowrpa.robot_certs.snow_cert_info
"""

EXAMPLES = r"""
---
- name: Register the robot CA and wait until it is published
  snowrpa.robot_certs.snow_ca_register:
    name: Robot CA
    pem_path: pki/robot-ca.pem
    expiration_notification: true
    warn_in_days: 60
  delegate_to: localhost

- name: Remove an old CA record
  snowrpa.robot_certs.snow_ca_register:
    name: Robot CA 2024
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
action:
  description: What the run did - V(created), V(replaced), V(updated), V(unchanged) or V(removed).
  returned: success
  type: str
ca:
  description: The CA record after the run; null for O(state=absent).
  returned: success
  type: dict
  contains:
    sys_id:
      description: sys_id of the record.
      type: str
    name:
      description: Record name.
      type: str
    active:
      description: V(true) or V(false), as the instance stores it.
      type: str
    type:
      description: Stored type value, V(ca_cert) or V(intermediate_cert).
      type: str
    publish_status:
      description: Publish status, V(exists) once published.
      type: str
    subject:
      description: Subject of the first certificate (RFC 4514).
      type: str
    issuer:
      description: Issuer of the first certificate (RFC 4514).
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
      description: Windows thumbprint (SHA-1 of the DER certificate, 40 upper-case hex digits).
      type: str
    attachment_hash:
      description: SHA-256 hex of the attached PEM.
      type: str
    certificates:
      description: Subject, issuer, validity, fingerprint and thumbprint of each certificate of the PEM.
      type: list
      elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_certs,
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
        "name": {"type": "str", "required": True},
        "pem_path": {"type": "path"},
        "pem_content": {"type": "str", "no_log": True},
        "type": {"type": "str", "choices": ["ca", "intermediate"], "default": "ca"},
        "active": {"type": "bool", "default": True},
        "expiration_notification": {"type": "bool"},
        "warn_in_days": {"type": "int"},
        "notify_users": {"type": "list", "elements": "str"},
        "wait_for_publish": {"type": "bool", "default": True},
        "publish_timeout": {"type": "int", "default": 300},
        "poll_interval": {"type": "float", "default": 2.0},
        "state": {
            "type": "str",
            "choices": ["present", "absent"],
            "default": "present",
        },
    }
    mutually_exclusive = [("pem_path", "pem_content")]
    required_if = [("state", "present", ("pem_path", "pem_content"), True)]
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=mutually_exclusive,
        required_if=required_if,
        supports_check_mode=True,
    )
    require_cryptography(module)
    run_module(
        module,
        lambda: _snow_certs.run_ca(
            module.params,
            SnowClient(module.params["instance"], check_mode=module.check_mode),
            module.check_mode,
        ),
    )


if __name__ == "__main__":
    main()
