# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Backend of cert_batch: many cert_generate + cert_export pairs in one task, over several processes.

Each item is one identity: an optional cert_generate step and an optional cert_export step, with
exactly the options (and the checks) of those modules, whose specs are reused here as suboptions.
The items are independent, so they are spread over worker processes forked from this one; an item
that fails is reported with its one-line error and does not stop the others.
"""

from __future__ import annotations

import collections
import concurrent.futures
import concurrent.futures.process
import contextlib
import ctypes
import multiprocessing
import os
import signal
import typing as t

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _cert_export,
    _cert_generate,
    _pki,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
    RobotCertsError,
    one_line,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._module_runner import (
    spec_constraints,
)


def _suboptions(backend: t.Any) -> dict[str, t.Any]:
    """A module's whole argument spec, with its constraints, as the options of one dict option."""
    return {
        "type": "dict",
        "options": backend.ARGUMENT_SPEC,
        **spec_constraints(backend),
    }


ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "items": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "id": {"type": "str", "required": True},
            "generate": _suboptions(_cert_generate),
            "export": _suboptions(_cert_export),
        },
        "required_one_of": [["generate", "export"]],
    },
    "workers": {"type": "int", "default": 0},
    "fail_on_error": {"type": "bool", "default": True},
}
MUTUALLY_EXCLUSIVE: list[list[str]] = []
REQUIRED_TOGETHER: list[list[str]] = []
REQUIRED_ONE_OF: list[list[str]] = []
REQUIRED_IF: list[list[t.Any]] = []
REQUIRED_BY: dict[str, list[str]] = {}

Outcome = tuple[bool, dict[str, t.Any], dict[str, t.Any], list[str]]
_PR_SET_PDEATHSIG = 1
# Below this many items a pool costs more than it saves (a fork per worker).
_POOL_MIN_ITEMS = 4
_CHUNKS_PER_WORKER = 8


def run_item(item: dict[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """Generate then export one identity; a failure becomes the item's msg, never an exception."""
    done: dict[str, t.Any] = {
        "id": item["id"],
        "changed": False,
        "failed": False,
        "warnings": [],
        "diff": {},
    }
    for step, backend in (("generate", _cert_generate), ("export", _cert_export)):
        params = item.get(step)
        if params is None:
            continue
        try:
            changed, result, diff, warnings = backend.run(params, check_mode=check_mode)
        except RobotCertsError as exc:
            done.update(failed=True, msg=f"{step}: {one_line(exc)}")
            return done
        except Exception as exc:  # noqa: BLE001 - one bad item must not take the others down
            done.update(
                failed=True,
                msg=f"{step}: unexpected {type(exc).__name__}: {one_line(exc)}",
            )
            return done
        done[step] = dict(result, changed=changed)
        done["changed"] = done["changed"] or changed
        done["warnings"] += list(warnings)
        if changed and diff:
            done["diff"][step] = diff
    return done


def _stop(signum: int, _frame: t.Any) -> None:
    # End at once, like the default action: a file being written is only ever a temp file, which the
    # next write into that folder removes (plugins/module_utils/_files.py).
    os._exit(128 + signum)


def _worker_init() -> None:
    """Give each worker its own signal handling, not the handlers of the process it was forked from.

    Ansible's worker process installs its own SIGTERM/SIGINT handlers; inherited by a pool worker they
    would keep it alive after Ctrl-C or after the pool tries to stop it, so the task would never end.
    """
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    parent = os.getppid()
    # Linux: end with the process that forked us (SIGKILLed, say), instead of waiting on its queue forever.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(1)


def _run_chunk(args: tuple[list[dict[str, t.Any]], bool]) -> list[dict[str, t.Any]]:
    items, check_mode = args
    return [run_item(item, check_mode) for item in items]


def worker_count(asked: int, items: int) -> int:
    """WORKERS, or one per CPU this process may use when 0; never more than there are items."""
    if asked < 0:
        raise CertificateError(f"workers must be 0 (one per CPU) or more, got {asked}")
    if asked == 0:
        try:
            asked = len(os.sched_getaffinity(0))
        except AttributeError:
            asked = os.cpu_count() or 1
    return max(1, min(asked, items))


def _folder(item: dict[str, t.Any]) -> str:
    for step, key in (
        ("generate", "path"),
        ("export", "pkcs12_path"),
        ("export", "pem_path"),
    ):
        path = (item.get(step) or {}).get(key)
        if path:
            return os.path.dirname(os.path.realpath(path))
    return str(item["id"])


def _spread(
    items: list[dict[str, t.Any]], workers: int, check_mode: bool
) -> list[dict[str, t.Any]]:
    if workers == 1:
        return _run_chunk((items, check_mode))
    # Identities writing into one folder (a robot's client and code-signing pair) stay in one chunk.
    # Several chunks per worker, taken as workers come free: RSA key generation varies so much that
    # one fixed share per worker left one of them idle while the other finished. A worker keeps its
    # issuer key cached from one chunk to the next.
    groups: dict[str, list[dict[str, t.Any]]] = {}
    for item in items:
        groups.setdefault(_folder(item), []).append(item)
    count = min(len(groups), workers * _CHUNKS_PER_WORKER)
    slices: list[tuple[list[dict[str, t.Any]], bool]] = [
        ([], check_mode) for _ignored in range(count)
    ]
    for index, group in enumerate(groups.values()):
        slices[index % count][0].extend(group)
    # fork: the children inherit the collection's import machinery and the already imported code.
    # An executor, not a Pool: a worker that dies (killed, out of memory) ends the task with an
    # error instead of leaving it waiting forever.
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_worker_init,
    )
    try:
        parts = list(pool.map(_run_chunk, [chunk for chunk in slices if chunk[0]]))
    except concurrent.futures.process.BrokenProcessPool:
        pool.shutdown(wait=True, cancel_futures=True)
        raise CertificateError(
            "a worker process of the batch ended unexpectedly (killed or out of memory); files of the identities"
            " it was making may be missing, never half-written: run again, or lower workers"
        ) from None
    except BaseException:
        # Interrupted (Ctrl-C, the task's worker told to stop): stop the workers now rather than
        # letting them finish the batch behind the back of a run that has ended.
        for child in multiprocessing.active_children():
            child.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    order = {item["id"]: index for index, item in enumerate(items)}
    return sorted(
        (done for part in parts for done in part), key=lambda d: order[d["id"]]
    )


def run(params: dict[str, t.Any], *, check_mode: bool) -> Outcome:
    """Run every item; return (changed, result, diff, warnings) with one entry per item id."""
    _pki.require_cryptography()
    items = params["items"]
    ids = [item["id"] for item in items]
    repeated = sorted(i for i, count in collections.Counter(ids).items() if count > 1)
    if repeated:
        raise CertificateError(
            f"item ids must be unique, {', '.join(map(repr, repeated))} repeats; give each item its own id"
        )
    paths: dict[str, str] = {}
    for item in items:
        for step, keys in (
            ("generate", ("path", "privatekey_path")),
            ("export", ("pem_path", "pkcs12_path")),
        ):
            for key in keys:
                path = (item.get(step) or {}).get(key)
                if not path:
                    continue
                owner = paths.setdefault(os.path.realpath(path), item["id"])
                if owner != item["id"]:
                    raise CertificateError(
                        f"items {owner!r} and {item['id']!r} both write {path!r}; give each item its own files"
                    )
    workers = worker_count(params["workers"], len(items))
    if len(items) < _POOL_MIN_ITEMS:
        workers = 1
    outcomes = _spread(items, workers, check_mode)

    failed = {d["id"]: d["msg"] for d in outcomes if d["failed"]}
    warnings = [f"{d['id']}: {w}" for d in outcomes for w in d.pop("warnings")]
    diff: dict[str, t.Any] = {"before": {}, "after": {}}
    for done in outcomes:
        for step, part in done.pop("diff").items():
            diff["before"].setdefault(done["id"], {})[step] = part.get("before")
            diff["after"].setdefault(done["id"], {})[step] = part.get("after")
    changed_ids = [d["id"] for d in outcomes if d["changed"]]
    result = {
        "items": {done.pop("id"): done for done in outcomes},
        "changed_ids": changed_ids,
        "failed_ids": list(failed),
        "workers": workers,
    }
    if failed and params["fail_on_error"]:
        # Failed, but what the other identities wrote is still reported (changed, changed_ids).
        first = next(iter(failed))
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        result.update(failed=True, msg=f"item {first!r}: {failed[first]}{more}")
    return bool(changed_ids), result, diff, warnings


__all__ = ("ARGUMENT_SPEC", "run", "run_item", "worker_count")
