# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared requirement: the cryptography library on the controller."""

from __future__ import annotations


class ModuleDocFragment:
    # Keep in sync with MINIMUM_CRYPTOGRAPHY_VERSION in plugins/module_utils/_pki.py.
    DOCUMENTATION = r"""
requirements:
  - cryptography >= 42.0.0 on the Ansible controller
options: {}
"""
