#!/usr/bin/python
# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402
"""Read-only pre-flight of a ServiceNow instance for certificate-based robot login."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: snow_cba_info
short_description: Check whether a ServiceNow instance is ready for certificate-based robot login
version_added: 0.1.0
description:
  - Reads, without changing anything, what mutual TLS login of RPA robots depends on - the
    ADCv2 load balancer (response header C(Server) V(snow_adc)), C(/adcv2/supports_tls), the state of the plugin
    C(com.glide.auth.mutual) and of the certificate tables, the calling user's roles (C(admin), C(sso_config_admin))
    and the relevant system properties. A boolean property holding anything but the lower-case V(true) or V(false)
    (V(True), say) is reported as a problem, since code comparing with V(true) reads it as false.
  - Returns the facts and a list of problems in plain words; an empty list means the instance is ready.
author:
  - snowrpa.robot_certs contributors (@snowrpa)
extends_documentation_fragment:
  - snowrpa.robot_certs.instance
options:
  plugin_id:
    description:
      - ID of the mutual authentication plugin.
    type: str
    default: com.glide.auth.mutual
  mode:
    description:
      - V(full) reads everything listed above.
      - V(auto) reads the plugin state first (one request) and stops there when the plugin is already active - an
        instance whose certificate-based authentication is set up has proven the other checks by working. The facts
        that were not read are then null and RV(facts.checked) is V(plugin). While the plugin is not active (or its
        state cannot be read), V(auto) runs the full checks.
    type: str
    choices: [full, auto]
    default: full
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
  - A read the calling user may not do becomes a problem in the list, not a failure; wrong credentials and an
    unreachable instance fail the task.
  - The roles are read only for a named user (Basic or the OAuth password grant).
  - With O(mode=auto) a change made after the set-up (a role taken from the calling user, a property set back) is
    not seen while the plugin is active; use O(mode=full) to check an instance that is already set up.
  - Once the certificate tables exist, the column names and choice values the collection infers are checked against
    the instance's C(sys_dictionary) and C(sys_choice), so a real instance that names them
    differently is reported before anything is written.
  - "Inferred facts [infer]: the certificate tables exist once sys_db_object has a row sys_ca_certificate;
    v_plugin.active is V(active) for an active plugin; sn_rpa_fdn.instance_authentication is V(mTLS) for
    certificate login."
"""

EXAMPLES = r"""
---
# The connection is set once per play for every ServiceNow module through the action group.
- name: Check the instance before mapping robots
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/snowrpa.robot_certs.servicenow:
      instance:
        host: myco.service-now.com
        username: "{{ sn_username }}"
        password: "{{ sn_password }}"
  tasks:
    - name: Check the instance
      snowrpa.robot_certs.snow_cba_info:
      register: preflight

    - name: Stop when the instance is not ready
      ansible.builtin.assert:
        that: preflight.problems | length == 0
        fail_msg: "{{ preflight.problems | join('; ') }}"

# Without module_defaults, give the connection to the task itself.
- name: Check the instance with an OAuth client
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check the instance
      snowrpa.robot_certs.snow_cba_info:
        instance:
          host: myco.service-now.com
          grant_type: client_credentials
          client_id: "{{ sn_client_id }}"
          client_secret: "{{ sn_client_secret }}"
      register: preflight

# On an instance already set up, read only the plugin state.
- name: Check the instance cheaply on every run
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check the instance, fully only while the plugin is not active
      snowrpa.robot_certs.snow_cba_info:
        mode: auto
      register: preflight
"""

RETURN = r"""
facts:
  description: What was read.
  returned: success
  type: dict
  contains:
    host:
      description: Instance host name.
      type: str
    adcv2:
      description: Whether responses carry the header C(Server) with V(snow_adc).
      type: bool
    server_header:
      description: The C(Server) header the instance sent.
      type: str
    supports_tls:
      description: Whether C(/adcv2/supports_tls) answered V(true).
      type: bool
    plugin:
      description: C(id), C(name) and C(active) (bool) of the plugin.
      type: dict
    certificate_tables:
      description: Whether the certificate tables exist.
      type: bool
    schema_mismatches:
      description:
        - Inferred column names and choice values of the certificate tables that the instance's C(sys_dictionary) and
          C(sys_choice) do not list; each is also a problem. Empty while the certificate tables do not exist.
      type: list
      elements: str
    user:
      description: Calling user, empty for client credentials or an API key.
      type: str
    roles:
      description: Role names of the calling user; null when they could not be read.
      type: list
      elements: str
    has_admin:
      description: Whether the user has role admin; null when unknown.
      type: bool
    has_sso_config_admin:
      description: Whether the user has role sso_config_admin; null when unknown.
      type: bool
    properties:
      description: Value of each relevant property by name; null for a property the instance has no record of.
      type: dict
    ready:
      description: True when no problem was found.
      type: bool
    checked:
      description:
        - V(full) when every check ran, V(plugin) when O(mode=auto) found the plugin active and read nothing else
          (the other facts are then null).
      type: str
problems:
  description: Each problem found, as one sentence saying what is wrong and what to do.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_preflight,
)
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
        "plugin_id": {"type": "str", "default": "com.glide.auth.mutual"},
        "mode": {
            "type": "str",
            "choices": list(_snow_preflight.MODES),
            "default": "full",
        },
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    run_module(
        module,
        lambda: _snow_preflight.run(
            module.params, SnowClient(module.params["instance"], check_mode=True), True
        ),
    )


if __name__ == "__main__":
    main()
