#!/usr/bin/python
# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402
"""Ensure ServiceNow system properties have their values."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: snow_property
short_description: Ensure ServiceNow system properties have their values
version_added: 0.1.0
description:
  - Reads the property from C(sys_properties) and sets its value when it differs. A property the instance has no
    record of is an error unless O(create=true), so a misspelt name is not created silently.
  - Takes one property (O(name), O(value)) or a list in O(properties). A list is read in one request
    (C(nameIN...)) and only the properties that differ are written, so an unchanged run costs one request.
  - Properties that matter for robot certificates - C(glide.authenticate.mutual.enabled) (the instance accepts
    certificate logins), C(glide.cometd.websocket.enabled) (robots need web sockets),
    C(sn_rpa_fdn.instance_authentication) (V(mTLS) makes robots log in with their certificate) and
    C(sn_rpa_fdn.code_signing_required) (robots run signed packages only).
author:
  - snowrpa.robot_certs contributors (@snowrpa)
extends_documentation_fragment:
  - snowrpa.robot_certs.instance
options:
  name:
    description:
      - Name of the property.
      - Required unless O(properties) is given; mutually exclusive with it.
    type: str
  value:
    description:
      - Value to store, as its text. Required with O(name).
      - For a property of type C(true|false) (or C(boolean)) the value is compared and stored as the canonical
        lower-case V(true) or V(false); V(True), V(yes), V(on) and V(1) (and their false counterparts) are accepted,
        anything else is an error.
    type: raw
  properties:
    description:
      - Several properties at once. All are read in one request and checked before the first write; when a write
        fails, the properties this run had already written are set back to their previous values.
      - Each item takes O(name) and O(value); O(create), O(type) and O(description) of an item override the
        module-level options of the same name.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the property.
        type: str
        required: true
      value:
        description: Value to store, as for the module-level O(value).
        type: raw
        required: true
      create:
        description: Create the property when the instance has no record of it; defaults to the module-level O(create).
        type: bool
      type:
        description: Type used when the property is created; defaults to the module-level O(type).
        type: str
      description:
        description: Description used when the property is created; defaults to the module-level O(description).
        type: str
  create:
    description:
      - Create the property when the instance has no record of it.
      - When V(false), a missing property fails the task, naming it, so that a misspelt name is caught.
    type: bool
    default: false
  type:
    description:
      - Type of the property, used only when the module creates it (O(create=true)); V(true|false) for a boolean.
    type: str
    default: string
  description:
    description:
      - Description, used only when the module creates the property (O(create=true)).
    type: str
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Values of C(password) and C(password2) properties are shown as asterisks.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - Turning on C(sn_rpa_fdn.code_signing_required) makes the robots refuse every published package that is not signed,
    so the module warns before doing it; republish the packages signed with the code-signing certificate.
  - The type of a property is read from the instance; a value is canonicalised as a boolean only when that type is
    C(true|false) or C(boolean).
"""

EXAMPLES = r"""
---
- name: Let robots log in with their certificate
  snowrpa.robot_certs.snow_property:
    name: sn_rpa_fdn.instance_authentication
    value: mTLS
  delegate_to: localhost

- name: Make sure the instance accepts certificate logins
  snowrpa.robot_certs.snow_property:
    name: glide.authenticate.mutual.enabled
    value: true
  delegate_to: localhost

- name: Create a property of our own
  snowrpa.robot_certs.snow_property:
    name: x_acme.robot_certs.managed
    value: true
    type: true|false
    description: Robot certificates on this instance are managed by Ansible
    create: true
  delegate_to: localhost

- name: Set the properties the robots need, read in one request
  snowrpa.robot_certs.snow_property:
    properties:
      - name: glide.authenticate.mutual.enabled
        value: true
      - name: glide.cometd.websocket.enabled
        value: true
      - name: sn_rpa_fdn.instance_authentication
        value: mTLS
    create: true
  delegate_to: localhost
"""

RETURN = r"""
property:
  description: The property after the run.
  returned: success, with O(name)
  type: dict
  contains:
    name:
      description: Property name.
      type: str
    value:
      description: Stored value (asterisks for password properties).
      type: str
    type:
      description: Property type.
      type: str
    sys_id:
      description: sys_id of the property record; empty when check mode would create it.
      type: str
previous_value:
  description: Value before the run; null when the property did not exist.
  returned: success, with O(name)
  type: str
properties:
  description: One entry per property of O(properties), in order, after the run.
  returned: success, with O(properties)
  type: list
  elements: dict
  contains:
    name:
      description: Property name.
      type: str
    value:
      description: Stored value (asterisks for password properties).
      type: str
    type:
      description: Property type.
      type: str
    sys_id:
      description: sys_id of the property record; empty when check mode would create it.
      type: str
    previous_value:
      description: Value before the run (asterisks for password properties); null when the property did not exist.
      type: str
    changed:
      description: Whether this property was (or in check mode would be) written.
      type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _snow_property
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._module_runner import (
    run_module,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._snow_client import (
    INSTANCE_ARGSPEC,
    SnowClient,
)


def main() -> None:
    argument_spec = {
        "instance": INSTANCE_ARGSPEC,
        "name": {"type": "str"},
        "value": {"type": "raw"},
        "properties": {
            "type": "list",
            "elements": "dict",
            "options": {
                "name": {"type": "str", "required": True},
                "value": {"type": "raw", "required": True},
                "create": {"type": "bool"},
                "type": {"type": "str"},
                "description": {"type": "str"},
            },
        },
        "type": {"type": "str", "default": "string"},
        "description": {"type": "str"},
        "create": {"type": "bool", "default": False},
    }
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("name", "properties")],
        required_one_of=[("name", "properties")],
        required_by={"name": ("value",)},
        supports_check_mode=True,
    )

    run_module(
        module,
        lambda: _snow_property.run(
            module.params,
            SnowClient(module.params["instance"], check_mode=module.check_mode),
            module.check_mode,
        ),
    )


if __name__ == "__main__":
    main()
