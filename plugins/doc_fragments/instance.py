# This file is part of the snowrpa.robot_certs collection.
"""The instance option shared by every ServiceNow module."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  instance:
    description:
      - How to reach and authenticate to the ServiceNow instance.
      - Set it once per play with C(module_defaults) and the action group C(group/snowrpa.robot_certs.servicenow).
      - Credentials are tried in this order - O(instance.api_key), OAuth (O(instance.client_id) and O(instance.client_secret)),
        Basic (O(instance.username) and O(instance.password)).
    type: dict
    version_added: 0.1.0
    suboptions:
      host:
        description:
          - Host name of the instance, for example V(myco.service-now.com), optionally with C(https://) and a port.
          - Plain C(http://) is refused, so credentials never travel in clear text.
          - If not set, the value of the E(SN_HOST) environment variable is used.
        type: str
        required: false
      username:
        description:
          - User for Basic authentication and for the OAuth password grant.
          - If not set, the value of the E(SN_USERNAME) environment variable is used.
        type: str
      password:
        description:
          - Password of O(instance.username).
          - If not set, the value of the E(SN_PASSWORD) environment variable is used.
        type: str
      client_id:
        description:
          - Client ID of an OAuth application registered on the instance; with O(instance.client_secret) it selects OAuth.
          - If not set, the value of the E(SN_CLIENT_ID) environment variable is used.
        type: str
      client_secret:
        description:
          - Client secret of the OAuth application.
          - If not set, the value of the E(SN_CLIENT_SECRET) environment variable is used.
        type: str
      grant_type:
        description:
          - OAuth grant used at C(/oauth_token.do).
          - Defaults to V(password) when O(instance.username) is set, else V(client_credentials).
        type: str
        choices: [password, client_credentials]
      api_key:
        description:
          - API key sent in the C(x-sn-apikey) header.
          - If not set, the value of the E(SN_API_KEY) environment variable is used.
        type: str
      timeout:
        description:
          - Seconds to wait for each answer of the instance.
        type: float
        default: 30
      validate_certs:
        description:
          - Verify the instance's TLS certificate. Turn it off only against a test instance.
        type: bool
        default: true
      ca_path:
        description:
          - PEM bundle of the CA that issued the instance's TLS certificate, when it is not in the system trust store.
        type: path
notes:
  - Requests answered 429 are retried after the C(Retry-After) seconds the instance asks for (capped at 60),
    and 502, 503 and 504 with exponential backoff (0.5 s doubling up to 8 s), at most 8 attempts in all;
    400, 401, 403 and 404 are never retried.
  - Error messages name the method, path, HTTP status and the instance's C(error.message), never a header or a secret.
  - An OAuth access token that expires during a run (a long plugin activation) is renewed once.
"""
