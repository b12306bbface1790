#!/usr/bin/python
# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402
"""Ensure a ServiceNow plugin is active."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: snow_plugin
short_description: Ensure a ServiceNow plugin is active, through the CI/CD API
version_added: 0.1.0
description:
  - Reads the plugin's state from C(v_plugin) and, when it is not active, activates it with
    C(POST /api/sn_cicd/plugin/{id}/activate), then polls the progress record until it reports success.
  - The default plugin, C(com.glide.auth.mutual), creates the certificate tables that
    M(snowrpa.robot_certs.snow_ca_register) and M(snowrpa.robot_certs.snow_user_cert) write to; they do not exist before the plugin is active.
author:
  - snowrpa.robot_certs contributors (@snowrpa)
extends_documentation_fragment:
  - snowrpa.robot_certs.instance
options:
  plugin_id:
    description:
      - ID of the plugin, as in C(v_plugin.id).
    type: str
    default: com.glide.auth.mutual
  timeout:
    description:
      - Seconds to wait for the activation to finish. Real instances take minutes.
    type: int
    default: 900
  poll_interval:
    description:
      - Seconds between two reads of the progress record.
    type: float
    default: 5
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: In check mode nothing is activated; the module reports whether it would.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - Needs role C(admin) or C(sn_cicd.sys_ci_automation).
  - The value V(active) of C(v_plugin.active) for an active plugin is inferred [infer], and kept in one constant.
  - When the activation fails or is cancelled, the error carries the progress record's own C(status_message),
    C(status_detail) and C(error) text.
seealso:
  - module: snowrpa.robot_certs.snow_cba_info
"""

EXAMPLES = r"""
---
- name: Activate the mutual authentication plugin
  snowrpa.robot_certs.snow_plugin:
    instance:
      host: myco.service-now.com
      username: admin
      password: "{{ sn_password }}"
    timeout: 1200
  delegate_to: localhost
"""

RETURN = r"""
plugin:
  description: The plugin's state after the run.
  returned: success
  type: dict
  contains:
    id:
      description: Plugin ID.
      type: str
      sample: com.glide.auth.mutual
    name:
      description: Plugin name.
      type: str
    active:
      description: Whether the plugin is active (in check mode, whether it would be).
      type: bool
progress:
  description: The final progress record of the activation; null when nothing was activated.
  returned: success
  type: dict
  contains:
    id:
      description: Progress record ID.
      type: str
    status:
      description: V(2) for successful.
      type: str
    status_label:
      description: Label of the status.
      type: str
    status_message:
      description: Message of the progress record.
      type: str
    percent_complete:
      description: Percentage the instance reported.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _snow_plugin
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
        "timeout": {"type": "int", "default": 900},
        "poll_interval": {"type": "float", "default": 5.0},
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    run_module(
        module,
        lambda: _snow_plugin.run(
            module.params,
            SnowClient(module.params["instance"], check_mode=module.check_mode),
            module.check_mode,
        ),
    )


if __name__ == "__main__":
    main()
