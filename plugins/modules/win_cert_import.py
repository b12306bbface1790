# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the action plugin runs on the controller, win_cert_import.ps1 on the host.

DOCUMENTATION = r"""
---
module: win_cert_import
short_description: Import a robot certificate and its chain from a PKCS#12 into Windows certificate stores
version_added: 0.1.0
description:
  - Imports the client-authentication or code-signing certificate of a ServiceNow RPA robot, with its private key, into
    a Windows certificate store, places its chain, and optionally grants accounts Read on the key, in one module run.
  - The PKCS#12 is read and decrypted on the controller. The controller finds the leaf (the certificate whose key is
    in the file) and the chain, computes the thumbprints, checks O(purpose), expiry and key presence, detects the
    encryption profile, and sends the bytes with these facts inside the module arguments. No file is copied to, or
    left on, the host.
  - Every host gets a PKCS#12 it can import, in the same single module run. A PBES2 (AES) file for a host older than
    build 17763 is re-encoded on the controller as a legacy file (3DES, SHA-1 MAC, same passphrase) and sent
    instead; when the build is not known, both go and the host picks by its own build. RV(profile) says which one
    the host imports.
  - Idempotent by the controller-computed thumbprint. A certificate that is present with a key that opens, in the
    requested keyset, is left alone; the PKCS#12 is never loaded on the host just to compare.
options:
  pkcs12_path:
    description:
      - Path of the PKCS#12 (C(.p12)/C(.pfx)) file on the controller. Relative paths are searched like other
        C(files/) lookups (role, playbook directory).
      - Mutually exclusive with O(pkcs12_content). One of them is required with O(state=present).
    type: path
  pkcs12_content:
    description:
      - The PKCS#12 as base64 text, for example from a vault.
      - Mutually exclusive with O(pkcs12_path).
    type: str
  pkcs12_passphrase:
    description:
      - Passphrase of the PKCS#12.
    type: str
  purpose:
    description:
      - What the certificate is for. Its extended key usage must allow it, or the task fails before the host is
        contacted; Windows would otherwise import it and the robot would never offer it (REFERENCE 7, failure 6).
      - Required with O(state=present).
    type: str
    choices: [client_auth, code_signing]
  store_location:
    description:
      - Store location of the leaf. V(CurrentUser) imports run as the robot user, with C(become).
    type: str
    default: LocalMachine
    choices: [LocalMachine, CurrentUser]
  store_name:
    description:
      - Store of the leaf.
    type: str
    default: My
  key_storage:
    description:
      - Keyset of the private key. V(auto) is the machine keyset for V(LocalMachine) and the user keyset for
        V(CurrentUser).
      - Machine keys are imported with C(MachineKeySet) explicitly, never the default keyset.
    type: str
    default: auto
    choices: [auto, machine, user]
  exportable:
    description:
      - Whether the private key may be exported again from Windows. Applies when the key is imported; changing it
        for a certificate already present needs O(state=absent) first.
    type: bool
    default: false
  friendly_name:
    description:
      - Friendly name of the certificate in the store. Defaults to the PKCS#12 friendly name.
    type: str
  chain:
    description:
      - Which chain certificates of the PKCS#12 to place. V(none) places none; V(ca) places intermediates in the
        C(CA) store of O(store_location); V(all) also places roots (and a self-signed leaf's certificate) in
        C(LocalMachine\Root).
      - Roots never go to C(CurrentUser\Root), whose confirmation dialog nobody can answer over WinRM.
    type: str
    default: ca
    choices: [none, ca, all]
  remove_superseded:
    description:
      - After the new certificate is in place, remove the other certificates of the same store that have the same
        friendly name, or the same subject and the O(purpose) EKU.
    type: bool
    default: false
  key_readers:
    description:
      - Accounts (names or SIDs) given Read on the imported private key, with exactly the semantics of
        M(snowrpa.robot_certs.win_key_acl) with O(snowrpa.robot_certs.win_key_acl#module:rights=read).
    type: list
    elements: str
    default: []
  key_readers_exact:
    description:
      - Also remove Full control from the O(key_readers), as O(snowrpa.robot_certs.win_key_acl#module:exact) does.
    type: bool
    default: false
  state:
    description:
      - V(present) imports; V(absent) removes the certificate with O(thumbprint) (or the PKCS#12's leaf) from the store.
    type: str
    default: present
    choices: [present, absent]
  thumbprint:
    description:
      - SHA-1 thumbprint of the certificate to remove with O(state=absent), as 40 hexadecimal digits (spaces and colons
        allowed). Not needed when the PKCS#12 is given.
    type: str
  target_os_build:
    description:
      - Windows build of the host (for example V(14393) for Server 2016). For a build below 17763 a PKCS#12 with
        PBES2 (AES) encryption is re-encoded as legacy on the controller and only that is sent; for 17763 and later
        the file is sent as it is.
      - Defaults to the build in gathered facts. Without either, a PBES2 file is sent together with its legacy
        re-encoding and the host chooses by its own build (read from the registry); no extra module run asks for it.
    type: int
extends_documentation_fragment:
  - snowrpa.robot_certs.cryptography_dep
attributes:
  action:
    description: Has an action plugin, so part of the work runs on the controller.
    support: full
    details: The PKCS#12 is opened and checked on the controller; the host receives it inside the module arguments.
  check_mode:
    description: Can run in check mode and predict whether it would change the target without changing it.
    support: full
  diff_mode:
    description: Returns what changed, or would change in check mode, when run in diff mode.
    support: full
  idempotent:
    description: A second run with the same arguments, outside check mode, reports no change.
    support: full
  platform:
    description: The target operating systems.
    support: full
    platforms: windows
notes:
  - Runs in Windows PowerShell 5.1 (.NET Framework 4.x).
  - V(CurrentUser) imports and user keys need the robot user's credentials and profile (REFERENCE 4). Run the task
    with C(become=true), C(become_method=runas) and C(become_user) set to the robot user; the task fails early
    otherwise, also on the host when its token has a network logon.
  - PKCS#12 files encrypted with AES-256/PBKDF2 (OpenSSL 3 default, the C(modern) profile) import only on build 17763
    (Windows 10 1809, Server 2019) and later; older builds answer with a misleading password error (REFERENCE 3).
    For those builds the controller re-encodes the same key, leaf, chain and friendly name as C(legacy) (3DES, SHA-1
    MAC, the same passphrase, C(cryptography)), so a fleet can keep one modern file per robot. Any file with a PBES2
    bag is treated this way, not only the exact modern profile.
  - The re-encoding exists only in the controller's memory and inside the module arguments (C(no_log)); it is never
    written to a file on the controller or the host. A modern file with an empty passphrase cannot be re-encoded
    (Windows needs a password); that fails before the host is contacted.
  - With the build unknown, the module arguments carry both encodings, about twice the size of one file.
  - A wrong O(target_os_build) that claims 17763 or later for an older host sends the modern file alone; the host
    then fails with C(error_code=os_build) before writing anything, naming the value to correct.
  - Chain certificates are sent as DER without keys, so placing them writes no key file. The PKCS#12 is loaded with
    C(PersistKeySet) only when the leaf must be imported.
  - Removing a certificate (O(state=absent), O(remove_superseded)) removes it from the store but leaves its key
    container in place.
  - Setting the friendly name of a certificate already in the store relies on the store copy writing the property
    back to its store [infer]; not yet run on a real host by this project.
  - The key security descriptor is written through the key provider (CAPI C(PP_KEYSET_SEC_DESCR), CNG
    C("Security Descr") with C(NCRYPT_PERSIST_FLAG)); the CNG flag combination is [infer] until run on a real host.
  - Not run against a Windows host by this project's own tests; see C(docs/windows.md) for the integration targets.
seealso:
  - module: snowrpa.robot_certs.win_key_acl
  - module: snowrpa.robot_certs.win_cert_info
author:
  - snowrpa.robot_certs contributors (@snowrpa)
"""

EXAMPLES = r"""
---
- name: Import the robot's client certificate for the Unattended Robot service
  snowrpa.robot_certs.win_cert_import:
    pkcs12_path: "certs/{{ inventory_hostname }}-client.p12"
    pkcs12_passphrase: "{{ robot_p12_passphrase }}"
    purpose: client_auth
    store_location: LocalMachine
    chain: all
    friendly_name: ServiceNow RPA robot mTLS
    remove_superseded: true
    key_readers:
      - NT SERVICE\SNRobotService
    key_readers_exact: true

- name: Import the code-signing certificate for the robot user
  snowrpa.robot_certs.win_cert_import:
    pkcs12_content: "{{ code_signing_p12_b64 }}"
    pkcs12_passphrase: "{{ robot_p12_passphrase }}"
    purpose: code_signing
    store_location: CurrentUser
  become: true
  become_method: ansible.builtin.runas
  become_user: "{{ robot_user }}"
  vars:
    ansible_become_password: "{{ robot_user_password }}"

- name: Remove an old certificate by thumbprint
  snowrpa.robot_certs.win_cert_import:
    state: absent
    thumbprint: 0123456789ABCDEF0123456789ABCDEF01234567
"""

RETURN = r"""
thumbprint:
  description: SHA-1 thumbprint of the leaf, computed on the controller.
  returned: always
  type: str
  sample: 0123456789ABCDEF0123456789ABCDEF01234567
subject:
  description: Subject of the leaf (RFC 4514).
  returned: when a PKCS#12 was given
  type: str
  sample: CN=robot-01,O=Example Robots
not_after:
  description: End of the leaf's validity (UTC).
  returned: when a PKCS#12 was given
  type: str
  sample: "2027-01-31T12:00:00Z"
profile:
  description:
    - With O(state=present), the encryption profile of the PKCS#12 the host chose to import (V(modern), V(legacy) or
      V(other)); an unchanged run reports the one it would have imported. V(legacy) after a re-encoding.
    - With O(state=absent), the profile of the given file.
  returned: when a PKCS#12 was given and the module succeeded
  type: str
  sample: legacy
reencoded:
  description: Whether the host received and chose the controller's legacy re-encoding of a PBES2 file instead of the file itself.
  returned: with O(state=present) when the module succeeded
  type: bool
  sample: false
store:
  description: The leaf's store.
  returned: always
  type: str
  sample: LocalMachine\My
friendly_name:
  description: Friendly name of the certificate in the store.
  returned: with O(state=present)
  type: str
has_private_key:
  description: Whether the stored certificate has a private key that opens (proved by signing with it).
  returned: with O(state=present)
  type: bool
key_provider:
  description: CAPI provider or CNG key storage provider of the key.
  returned: with O(state=present)
  type: str
  sample: Microsoft Software Key Storage Provider
machine_key:
  description: Whether the key is in the machine keyset.
  returned: with O(state=present)
  type: bool
exportable:
  description: Whether the key may be exported.
  returned: with O(state=present)
  type: bool
chain:
  description: The chain certificates placed, each with thumbprint, subject, role, store and whether it was added.
  returned: always
  type: list
  elements: dict
chain_skipped:
  description: Thumbprints of chain certificates left out by O(chain).
  returned: when a PKCS#12 was given and the module succeeded
  type: list
  elements: str
superseded:
  description: The certificates removed by O(remove_superseded) (thumbprint, subject, friendly_name, not_after).
  returned: always
  type: list
  elements: dict
key_acl:
  description: Result of applying O(key_readers), with the key's ACEs before and after.
  returned: when O(key_readers) is not empty
  type: dict
identity:
  description: The Windows identity the module ran as.
  returned: always
  type: str
  sample: EXAMPLE\ansible
os_build:
  description: Windows build of the host.
  returned: with O(state=present)
  type: int
  sample: 17763
error_code:
  description: Machine-readable reason of a failure the module recognised (for example V(os_build), V(no_user_credentials)).
  returned: on recognised failures
  type: str
"""
