"""A local test double of a ServiceNow instance, for the collection's tests and ``make demo``.

It is not ServiceNow. It implements the REST subset of docs/servicenow-api.md over real HTTPS on
127.0.0.1 (a throwaway server CA kept in its state directory), keeps its state in SQLite, and
models the instance behaviour of ../shared/REFERENCE.md section 5: the mutual-authentication
plugin and its certificate tables, CA publishing, user certificate mappings and the mutual-TLS
login. See README.md in this directory for what it simplifies.

Run it with ``python -m tests.servicenow_double --state-dir DIR --ready-file FILE`` from the
repository root, or use the pytest fixtures of ``tests.servicenow_double.fixture``.
"""

from __future__ import annotations

__all__: tuple[str, ...] = ()
