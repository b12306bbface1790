"""`make bench`: the collection against its alternatives, measured side by side in one run.

Three ways issue the same identities (bench/floor.py, bench/playbooks/community_crypto.yml,
bench/playbooks/role.yml); each is timed on a first run and an unchanged re-run, and the no-op
dispatch floor replays each playbook's task stream as `ansible.builtin.set_fact` tasks. Medians
of repeated runs go to bench/results.md with the machine and versions, and a chart to
bench/issue-time.png. Settings come from the environment (see scripts/bench.sh).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
MAIN_BIN = REPO / ".venv" / "bin"
COMMUNITY_BIN = BENCH / ".venv-community" / "bin"
PASSPHRASE = "bench-pkcs12-passphrase"
RECAP = re.compile(
    r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


def env_ints(name: str, default: str) -> list[int]:
    return [int(value) for value in os.environ.get(name, default).split()]


def parse_plan(text: str) -> list[tuple[str, int, int, str]]:
    """Entries KEY:N[:REPEATS[:SCOPE]]; SCOPE "all" (floor, role, no-op) or "floor" (the floor only)."""
    plan = []
    for entry in text.split():
        parts = entry.split(":")
        plan.append(
            (
                parts[0],
                int(parts[1]),
                int(parts[2]) if len(parts) > 2 else 1,
                parts[3] if len(parts) > 3 else "all",
            )
        )
    return plan


@dataclasses.dataclass
class Settings:
    sizes: list[int]
    plan: list[tuple[str, int, int, str]]
    community_plan: list[tuple[str, int, int, str]]
    snow_sizes: list[int]
    forks: int
    work: Path

    @classmethod
    def from_env(cls, work: Path) -> Settings:
        return cls(
            sizes=env_ints("BENCH_SIZES", "20 100 500"),
            plan=parse_plan(
                os.environ.get(
                    "BENCH_PLAN",
                    "rsa:20:3 ecdsa:20:3 rsa:100:3 ecdsa:100:3 rsa:500:1 ecdsa:500:1",
                )
            ),
            community_plan=parse_plan(
                os.environ.get(
                    "BENCH_COMMUNITY_PLAN", "rsa:0 rsa:20 rsa:100 ecdsa:0 ecdsa:20"
                )
            ),
            snow_sizes=env_ints("BENCH_SNOW_SIZES", "20"),
            forks=int(os.environ.get("BENCH_FORKS", "5")),
            work=work,
        )

    @property
    def key_types(self) -> list[str]:
        return list(dict.fromkeys(key for key, _n, _r, _s in self.plan))

    def repeats_for(self, key_type: str, n: int) -> str:
        found = [r for k, size, r, _s in self.plan if k == key_type and size == n]
        return str(found[0]) if found else "0"


@dataclasses.dataclass
class Timing:
    way: str
    key_type: str
    n: int
    phase: str
    seconds: list[float] = dataclasses.field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def log(message: str) -> None:
    print(f"[bench {datetime.datetime.now():%H:%M:%S}] {message}", flush=True)


def inventory(path: Path, n: int, python: Path) -> Path:
    lines = ["[robots]"]
    lines += [
        f"robot-{i:04d} robot_snow_user=svc-robot-{i:04d}" for i in range(1, n + 1)
    ]
    lines += [
        "",
        "[robots:vars]",
        "ansible_connection=local",
        f"ansible_python_interpreter={python}",
    ]
    lines += [
        "",
        "[local]",
        f"localhost ansible_connection=local ansible_python_interpreter={python}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def timed(
    command: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO
) -> tuple[float, str]:
    run_env = dict(os.environ)
    run_env.update(env or {})
    for name in [
        name
        for name, value in run_env.items()
        if value == "" and name.startswith("ANSIBLE_")
    ]:
        del run_env[name]
    started = time.perf_counter()
    proc = subprocess.run(
        command, capture_output=True, text=True, env=run_env, cwd=cwd, check=False
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).splitlines()
        fatal = [
            line[:600]
            for line in lines
            if line.startswith(("fatal:", "[ERROR]")) or "FAILED!" in line
        ]
        raise RuntimeError(
            f"{' '.join(command[:2])} failed with rc {proc.returncode}:\n"
            + "\n".join(fatal[:3] or lines[-25:])
        )
    return elapsed, proc.stdout


def recap_changed(stdout: str) -> dict[str, int]:
    return {
        host: int(changed)
        for host, _ok, changed, _unreachable, _failed in RECAP.findall(stdout)
    }


class Playbook:
    """One way of issuing, run with ansible-playbook from BIN; COLLECTIONS names its collection path."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        path: Path,
        bin_dir: Path,
        extra: dict[str, str],
        config: Path | None,
    ):
        self.settings, self.name, self.path, self.bin_dir, self.extra, self.config = (
            settings,
            name,
            path,
            bin_dir,
            extra,
            config,
        )

    def env(self, stream: Path | None) -> dict[str, str]:
        env = {
            "ANSIBLE_FORKS": str(self.settings.forks),
            "ANSIBLE_CALLBACK_PLUGINS": str(BENCH / "callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "task_stream" if stream else "",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_HOST_KEY_CHECKING": "0",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "BENCH_TASK_STREAM": str(stream or ""),
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        if self.config:
            env["ANSIBLE_CONFIG"] = str(self.config)
        else:
            # The community venv must not see this checkout's ansible.cfg or collections: it runs in the
            # work folder, with community.crypto from the `ansible` package in its own site-packages.
            env["ANSIBLE_CONFIG"] = ""
            env["ANSIBLE_COLLECTIONS_PATH"] = str(self.settings.work / "no-collections")
        return env

    def run(
        self,
        playbook: Path,
        inv: Path,
        out: Path,
        key_type: str,
        stream: Path | None = None,
    ) -> tuple[float, dict[str, int]]:
        variables = {
            "bench_out": str(out),
            "bench_key_type": key_type,
            "bench_pkcs12_passphrase": PASSPHRASE,
        } | self.extra
        command = [
            str(self.bin_dir / "ansible-playbook"),
            str(playbook),
            "-i",
            str(inv),
            "-e",
            json.dumps(variables),
        ]
        elapsed, stdout = timed(command, env=self.env(stream), cwd=self.settings.work)
        return elapsed, recap_changed(stdout)


def noop_playbook(stream: Path, target: Path) -> tuple[Path, int]:
    """The no-op twin of a recorded run: same plays, same hosts, same tasks, loops and skips, all set_fact."""
    data = json.loads(stream.read_text(encoding="utf-8"))
    plays, dispatched = [], 0
    for play in data["plays"]:
        tasks = []
        for index, task in enumerate(play["tasks"]):
            hosts = task["hosts"].values()
            if not hosts:
                continue
            noop: dict[str, t.Any] = {
                "name": f"Dispatch task {index} ({task['action']})",
                "ansible.builtin.set_fact": {"bench_noop": 1},
            }
            items = max(h["items"] for h in hosts)
            if items:
                noop["loop"] = f"{{{{ range({items}) | list }}}}"
            if task["run_once"]:
                noop["run_once"] = True
            if sum(h["skipped"] for h in hosts) * 2 > len(hosts):
                noop["when"] = False
            dispatched += sum(max(h["items"], 1) for h in hosts)
            tasks.append(noop)
        plays.append(
            {
                "name": play["name"],
                "hosts": play["hosts"],
                "gather_facts": False,
                "tasks": tasks,
            }
        )
    target.write_text(json.dumps(plays, indent=1), encoding="utf-8")
    return target, dispatched


def task_profile(stream: Path) -> list[tuple[str, str, float]]:
    """(task, action, seconds) of a recorded run, slowest first."""
    data = json.loads(stream.read_text(encoding="utf-8"))
    tasks = [
        (task["name"], task["action"], task.get("seconds", 0.0))
        for play in data["plays"]
        for task in play["tasks"]
    ]
    return sorted(tasks, key=lambda item: -item[2])


def expected_files(out: Path, n: int, names: list[str]) -> None:
    """Fail the benchmark when a run did not produce every robot's files (a timed failure is no result)."""
    missing = [
        str(out / f"robot-{i:04d}" / name)
        for i in range(1, n + 1)
        for name in names
        if not (out / f"robot-{i:04d}" / name).is_file()
    ]
    if missing:
        raise RuntimeError(f"{len(missing)} expected files missing, first {missing[0]}")


def verify_sample(out: Path, ca: Path, leaf: Path, p12: Path) -> None:
    """Independent check of one robot's output with openssl."""
    subprocess.run(
        ["openssl", "verify", "-purpose", "sslclient", "-CAfile", str(ca), str(leaf)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "openssl",
            "pkcs12",
            "-in",
            str(p12),
            "-passin",
            f"pass:{PASSPHRASE}",
            "-noout",
            "-legacy",
        ],
        check=True,
        capture_output=True,
    )


COMMUNITY_KEY_TYPE = {"rsa": "RSA", "ecdsa": "ECC"}
ROLE_FILES = [
    "client.key",
    "client.crt",
    "client.pem",
    "client.p12",
    "codesign.key",
    "codesign.crt",
    "codesign.pem",
    "codesign.p12",
]
COMMUNITY_FILES = [
    "client_auth.key",
    "client_auth.crt",
    "client_auth.p12",
    "code_signing.key",
    "code_signing.crt",
    "code_signing.p12",
]


class Harness:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timings: dict[tuple[str, str, int, str], Timing] = {}
        self.dispatched: dict[tuple[str, str, int], int] = {}
        self.role = Playbook(
            settings,
            "role",
            BENCH / "playbooks" / "role.yml",
            MAIN_BIN,
            {},
            REPO / "ansible.cfg",
        )
        self.community = Playbook(
            settings,
            "community.crypto",
            BENCH / "playbooks" / "community_crypto.yml",
            COMMUNITY_BIN,
            {"bench_encryption_level": "compatibility2022"},
            None,
        )
        self.counter = 0
        self.failures: list[str] = []
        self.profiles: dict[
            tuple[str, str, int, str], list[tuple[str, str, float]]
        ] = {}

    def record(
        self, way: str, key_type: str, n: int, phase: str, seconds: float
    ) -> None:
        timing = self.timings.setdefault(
            (way, key_type, n, phase), Timing(way, key_type, n, phase)
        )
        timing.seconds.append(seconds)
        log(f"{way:<22} {key_type:<5} N={n:<4} {phase:<7} {seconds:8.2f} s")

    def fresh(self, label: str) -> Path:
        self.counter += 1
        folder = self.settings.work / f"{self.counter:03d}-{label}"
        folder.mkdir()
        return folder

    def floor(self, key_type: str, n: int, procs: int) -> None:
        way = "cryptography floor" if procs == 1 else f"cryptography floor x{procs}"
        out = self.fresh(f"floor{procs}-{key_type}-{n}") / "out"
        base = [
            str(MAIN_BIN / "python"),
            str(BENCH / "floor.py"),
            "--out",
            str(out),
            "-n",
            str(n),
            "--key-type",
            key_type,
        ]
        env = {"BENCH_PKCS12_PASSPHRASE": PASSPHRASE}
        self.record(
            way, key_type, n, "first", timed([*base, "--procs", str(procs)], env=env)[0]
        )
        expected_files(out, n, ROLE_FILES)
        self.record(
            way,
            key_type,
            n,
            "re-run",
            timed([*base, "--procs", str(procs), "--check"], env=env)[0],
        )
        shutil.rmtree(out.parent)

    def playbook(self, book: Playbook, key_type: str, n: int, files: list[str]) -> None:
        folder = self.fresh(f"{book.name}-{key_type}-{n}")
        python = book.bin_dir / "python"
        inv = inventory(folder / "inventory.ini", n, python)
        out = folder / "out"
        wire_key = COMMUNITY_KEY_TYPE[key_type] if book is self.community else key_type

        seconds, _changed = book.run(
            book.path, inv, out, wire_key, stream=folder / "first.json"
        )
        self.record(book.name, key_type, n, "first", seconds)
        if n:
            expected_files(out, n, files)
            stem = "client" if book is self.role else "client_auth"
            verify_sample(
                out,
                out / "ca" / "robot-ca.crt",
                out / "robot-0001" / f"{stem}.crt",
                out / "robot-0001" / f"{stem}.p12",
            )

        seconds, changed = book.run(
            book.path, inv, out, wire_key, stream=folder / "rerun.json"
        )
        moved = sorted(host for host, count in changed.items() if count)
        if moved:
            raise RuntimeError(
                f"{book.name} re-run changed {len(moved)} hosts, first {moved[0]}: not an unchanged re-run"
            )
        self.record(book.name, key_type, n, "re-run", seconds)

        for phase in ("first", "rerun"):
            self.profiles[(book.name, key_type, n, phase)] = task_profile(
                folder / f"{phase}.json"
            )
        noop, dispatched = noop_playbook(folder / "rerun.json", folder / "noop.yml")
        self.dispatched[(book.name, key_type, n)] = dispatched
        seconds, _changed = book.run(noop, inv, out, wire_key)
        self.record(f"no-op dispatch ({book.name})", key_type, n, "re-run", seconds)
        shutil.rmtree(folder)

    def run(self) -> None:
        s = self.settings
        for key_type, n, repeats, scope in s.plan:
            for _repeat in range(repeats):
                # The ways of one repetition run back to back, so a change in machine load hits all of them.
                self.floor(key_type, n, 1)
                self.floor(key_type, n, 2)
                if scope == "all":
                    self.guarded(self.role, key_type, n, ROLE_FILES)
        for key_type, n, _repeats, _scope in s.community_plan:
            self.guarded(self.community, key_type, n, COMMUNITY_FILES)

    def guarded(self, book: Playbook, key_type: str, n: int, files: list[str]) -> None:
        """Measure what works: a way that fails is reported in results.md, not timed."""
        try:
            self.playbook(book, key_type, n, files)
        except RuntimeError as exc:
            lines = str(exc).splitlines()
            reason = " / ".join(lines[1:4]) or lines[0]
            self.failures.append(f"{book.name}, {key_type}, N={n}: {lines[0]} {reason}")
            log(f"{book.name} failed: {reason}")


def command_output(command: list[str]) -> str:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return "not installed"


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "nproc": str(os.cpu_count()),
        "CPU": cpu,
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "load average at start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


def versions() -> dict[str, str]:
    def pip_version(bin_dir: Path, package: str) -> str:
        code = f"import importlib.metadata as m; print(m.version({package!r}))"
        return command_output([str(bin_dir / "python"), "-c", code]) or "missing"

    galaxy = (REPO / "galaxy.yml").read_text(encoding="utf-8")
    ours = re.search(r"^version:\s*(\S+)", galaxy, re.M)
    community = COMMUNITY_BIN.parent / "lib"
    manifest = next(
        community.glob(
            "python3*/site-packages/ansible_collections/community/crypto/MANIFEST.json"
        ),
        None,
    )
    crypto_version = (
        json.loads(manifest.read_text())["collection_info"]["version"]
        if manifest
        else "missing"
    )
    return {
        "Python": platform.python_version(),
        "snowrpa.robot_certs": ours.group(1) if ours else "?",
        "ansible-core (collection venv)": pip_version(MAIN_BIN, "ansible-core"),
        "cryptography (collection venv)": pip_version(MAIN_BIN, "cryptography"),
        "ansible (community venv)": pip_version(COMMUNITY_BIN, "ansible"),
        "ansible-core (community venv)": pip_version(COMMUNITY_BIN, "ansible-core"),
        "cryptography (community venv)": pip_version(COMMUNITY_BIN, "cryptography"),
        "community.crypto": crypto_version,
        "OpenSSL": command_output(["openssl", "version"]),
    }


def estimate(
    harness: Harness, way: str, key_type: str, n: int, phase: str
) -> tuple[float, bool] | None:
    """Median at N if measured, else on the least-squares line through the measured medians (fixed cost + per robot)."""
    measured = {
        size: t.median
        for (w, k, size, p), t in harness.timings.items()
        if w == way and k == key_type and p == phase
    }
    if n in measured:
        return measured[n], False
    if len(measured) < 2:
        return None
    xs, ys = list(measured), list(measured.values())
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    # Noise can tilt a line through small N downwards; time never falls as robots are added.
    per_robot = max(
        0.0,
        sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread,
    )
    return max(0.0, mean_y + (n - mean_x) * per_robot), True


def fmt(seconds: float | None) -> str:
    return (
        "n/a"
        if seconds is None
        else (f"{seconds:.2f}" if seconds < 100 else f"{seconds:.0f}")
    )


WAYS = (
    ("cryptography floor", "tab:gray", "o"),
    ("cryptography floor x2", "tab:olive", "s"),
    ("role", "tab:blue", "D"),
    ("community.crypto", "tab:red", "^"),
    ("no-op dispatch (role)", "tab:cyan", "v"),
)


def chart(harness: Harness, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    s = harness.settings
    fig, axes = plt.subplots(
        len(s.key_types), 2, figsize=(11, 4.2 * len(s.key_types)), squeeze=False
    )
    for row, key_type in enumerate(s.key_types):
        for col, phase in enumerate(("first", "re-run")):
            ax = axes[row][col]
            for way, colour, marker in WAYS:
                points = [
                    (n, estimate(harness, way, key_type, n, phase)) for n in s.sizes
                ]
                known = [(n, est) for n, est in points if est is not None]
                if not known:
                    continue
                ax.plot(
                    [n for n, _e in known],
                    [e[0] for _n, e in known],
                    color=colour,
                    linestyle="-",
                    label=way,
                )
                for n, est in known:
                    ax.plot(
                        [n],
                        [est[0]],
                        marker=marker,
                        color=colour,
                        fillstyle="none" if est[1] else "full",
                        linestyle="",
                    )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(s.sizes, [str(n) for n in s.sizes])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xlabel("robots (N)")
            ax.set_ylabel("seconds (median)")
            ax.set_title(
                f"{key_type.upper()}: {'issue (first run)' if phase == 'first' else 'unchanged re-run'}"
            )
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8, title="hollow marker: extrapolated", title_fontsize=7)
    fig.suptitle(
        f"Client-auth + code-signing identities for N robots: forks={s.forks}, {os.cpu_count()} cores"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ratio(a: tuple[float, bool] | None, b: tuple[float, bool] | None) -> str:
    if a is None or b is None or b[0] == 0:
        return "n/a"
    return f"{a[0] / b[0]:.2f}" + (" (extrapolated)" if a[1] or b[1] else "")


def mark(est: tuple[float, bool] | None) -> str:
    return "n/a" if est is None else fmt(est[0]) + (" (extrapolated)" if est[1] else "")


def timing_section(harness: Harness) -> list[str]:
    s = harness.settings

    def est(way: str, key_type: str, n: int, phase: str) -> tuple[float, bool] | None:
        return estimate(harness, way, key_type, n, phase)

    lines = [
        "## Issue and re-run times (seconds, median)",
        "",
        "| key | N | repeats | floor | floor x2 | role | community.crypto | role re-run | no-op dispatch | floor re-run | community re-run |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key_type in s.key_types:
        for n in s.sizes:
            cells = [
                mark(est("cryptography floor", key_type, n, "first")),
                mark(est("cryptography floor x2", key_type, n, "first")),
                mark(est("role", key_type, n, "first")),
                mark(est("community.crypto", key_type, n, "first")),
                mark(est("role", key_type, n, "re-run")),
                mark(est("no-op dispatch (role)", key_type, n, "re-run")),
                mark(est("cryptography floor", key_type, n, "re-run")),
                mark(est("community.crypto", key_type, n, "re-run")),
            ]
            lines.append(
                f"| {key_type} | {n} | {s.repeats_for(key_type, n)} | "
                + " | ".join(cells)
                + " |"
            )
    lines += [
        "",
        "## Targets (issue 6): ratios of medians from the same run",
        "",
        "| key | N | role / floor (target <= 1.0) | role / floor x2 | community / role (target >= 20) "
        "| role re-run / no-op (target <= 2.0) | community re-run / role re-run (target >= 20) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key_type in s.key_types:
        for n in s.sizes:
            role_first, role_again = (
                est("role", key_type, n, "first"),
                est("role", key_type, n, "re-run"),
            )
            cells = [
                ratio(role_first, est("cryptography floor", key_type, n, "first")),
                ratio(role_first, est("cryptography floor x2", key_type, n, "first")),
                ratio(est("community.crypto", key_type, n, "first"), role_first),
                ratio(role_again, est("no-op dispatch (role)", key_type, n, "re-run")),
                ratio(est("community.crypto", key_type, n, "re-run"), role_again),
            ]
            lines.append(f"| {key_type} | {n} | " + " | ".join(cells) + " |")
    if harness.failures:
        lines += ["", "## Not measured: these runs failed", ""] + [
            f"- {failure}" for failure in harness.failures
        ]
    largest: dict[tuple[str, str], tuple[int, str, list[tuple[str, str, float]]]] = {}
    for (way, key_type, n, phase), profile in harness.profiles.items():
        if n >= largest.get((way, phase), (-1, "", []))[0]:
            largest[(way, phase)] = (n, key_type, profile)
    for (way, phase), (n, key_type, profile) in sorted(largest.items()):
        total = sum(seconds for _name, _action, seconds in profile) or 1.0
        lines += [
            "",
            f"Where the time goes: {way}, {phase.replace('rerun', 're-run')}, {key_type}, N={n} (wall time per task, last repeat):",
            "",
        ]
        lines += [
            f"- {seconds:.2f} s ({seconds / total:.0%}) {name} (`{action}`)"
            for name, action, seconds in profile[:6]
        ]
    lines += ["", "Every individual run, in seconds:", ""]
    for timing in sorted(
        harness.timings.values(), key=lambda t: (t.key_type, t.n, t.way, t.phase)
    ):
        lines.append(
            f"- {timing.way}, {timing.key_type}, N={timing.n}, {timing.phase}: {', '.join(f'{v:.2f}' for v in timing.seconds)}"
        )
    lines += [
        "",
        "Tasks dispatched per run (task results and loop items over all hosts, from the task-stream callback):",
        "",
    ]
    for (way, key_type, n), count in sorted(harness.dispatched.items()):
        lines.append(
            f"- {way}, {key_type}, N={n}: {count} ({count / max(n, 1):.1f} per robot)"
        )
    return lines


def _split(profile: list[tuple[str, str, float]], total: float) -> str:
    """How a role run's wall time divides: the batch task, the other tasks, and start-up."""
    batch = sum(sec for _n, action, sec in profile if action.endswith(".cert_batch"))
    others = sum(
        sec for _n, action, sec in profile if not action.endswith(".cert_batch")
    )
    return (
        f"{total:.2f} s = {batch:.2f} s in the cert_batch task + {others:.2f} s in the other tasks"
        f" + {max(total - batch - others, 0.0):.2f} s of ansible-playbook start-up and play set-up"
    )


# Issue 6's targets: (label, numerator way and phase, denominator way and phase, target, sense).
TARGETS = (
    (
        "issue: role / floor",
        ("role", "first"),
        ("cryptography floor", "first"),
        1.0,
        "<=",
    ),
    (
        "issue: community.crypto / role",
        ("community.crypto", "first"),
        ("role", "first"),
        20.0,
        ">=",
    ),
    (
        "re-run: role / no-op dispatch",
        ("role", "re-run"),
        ("no-op dispatch (role)", "re-run"),
        2.0,
        "<=",
    ),
    (
        "re-run: community.crypto / role",
        ("community.crypto", "re-run"),
        ("role", "re-run"),
        20.0,
        ">=",
    ),
)


def _dispatch_bound(
    harness: Harness, key_type: str, n: int, allowed: float
) -> list[str]:
    """Whether the target is out of reach: Ansible's dispatch of the role's own tasks, as no-ops, already takes longer."""
    dispatch = estimate(harness, "no-op dispatch (role)", key_type, n, "re-run")
    if dispatch is None or dispatch[0] < allowed:
        return []
    return [
        f"  - out of reach with the role's task list: Ansible's dispatch of the role's tasks to {n} robots as no-ops"
        f" (no work at all) takes {dispatch[0]:.2f} s, more than the {allowed:.2f} s the target allows"
    ]


def targets_section(harness: Harness, n: int = 100) -> list[str]:
    """Each target of issue 6 at N robots: met, or missed by how much and where the time went."""
    lines = [f"## Targets at N = {n}: met or missed, and why", ""]
    for key_type in harness.settings.key_types:
        role = estimate(harness, "role", key_type, n, "first")
        again = estimate(harness, "role", key_type, n, "re-run")
        checks = [
            (
                label,
                estimate(harness, top[0], key_type, n, top[1]),
                estimate(harness, bottom[0], key_type, n, bottom[1]),
                target,
                sense,
            )
            for label, top, bottom, target, sense in TARGETS
        ]
        for label, top, bottom, target, sense in checks:
            if top is None or bottom is None or bottom[0] == 0:
                lines.append(f"- {key_type}, {label}: not measured")
                continue
            value = top[0] / bottom[0]
            met = value <= target if sense == "<=" else value >= target
            extrapolated = " (extrapolated)" if top[1] or bottom[1] else ""
            verdict = (
                "met"
                if met
                else f"missed by {value / target:.2f}x"
                if sense == "<="
                else f"missed by {target / value:.2f}x"
            )
            lines.append(
                f"- {key_type}, {label} = {value:.2f}{extrapolated} (target {sense} {target:g}): {verdict}"
            )
            if label == TARGETS[0][0] and not met:
                lines.extend(_dispatch_bound(harness, key_type, n, bottom[0] * target))
        for phase, est in (("first", role), ("rerun", again)):
            profile = harness.profiles.get(("role", key_type, n, phase))
            if est is not None and profile and not est[1]:
                lines.append(
                    f"  - role {phase.replace('rerun', 're-run')} (median, task times of the last repeat): {_split(profile, est[0])}"
                )
    return lines + [""]


METHOD = [
    "## Method",
    "",
    "- **The work** (every way): a robot CA, then for each robot a client-authentication and a code-signing identity:",
    "  new key, certificate signed by the CA, PEM, PKCS#12 with 3DES bags, SHA-1 MAC and 2048 KDF rounds (the collection's",
    "  legacy profile), keys and PKCS#12 0600 in 0700 folders. RSA-2048 or ECDSA P-256.",
    "- **cryptography floor** (`bench/floor.py`): the same work in one Python process with plain `cryptography`, files",
    "  written as the collection writes them (temp file, fsync, rename). `x2` spreads the robots over two processes",
    "  (both cores). Its re-run reads every file back and checks key, certificate, expiry and PKCS#12, writing nothing.",
    "- **role** (`bench/playbooks/role.yml`): `snowrpa.robot_certs.robot_identity` for an inventory of N robots",
    "  (`ansible_connection=local`), as provision.yml runs it.",
    "- **community.crypto** (`bench/playbooks/community_crypto.yml`, own venv from bench/requirements-community-crypto.txt):",
    "  per identity openssl_privatekey, openssl_csr, x509_certificate (ownca) and openssl_pkcs12 (compatibility2022, the",
    "  same 3DES/SHA-1 encryption), plus one folder task per robot. N=0 runs only the CA play: its fixed cost.",
    "- **no-op dispatch**: the role's recorded re-run replayed as `ansible.builtin.set_fact` tasks with the same plays,",
    "  hosts, task count, loop lengths, run_once and skips (bench/callback_plugins/task_stream.py records the stream).",
    "  It is what Ansible itself costs for that many tasks: the floor for any re-run.",
    "- Times are wall clock of the whole command (interpreter and ansible-playbook start included), and only of runs",
    "  that did the work: a run that fails, misses a file or changes anything on its re-run is listed under",
    "  'Not measured' instead; one robot per run is verified with `openssl verify` and `openssl pkcs12`.",
    "- The machine is shared: other jobs ran at the same time (see the load averages). Ratios come from runs made",
    "  back to back and are steadier than the absolute times.",
    "",
]


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="snowrpa-bench-"))
    settings = Settings.from_env(work)
    started = time.perf_counter()
    info, vers = machine(), versions()
    harness = Harness(settings)
    sections: list[str] = []
    try:
        harness.run()
        sys.path.insert(0, str(BENCH))
        import counts

        sections += counts.servicenow_section(settings.snow_sizes, settings.forks)
        sections += counts.windows_section()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info["load average at end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    elapsed = time.perf_counter() - started

    chart(harness, BENCH / "issue-time.png")
    head = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC in {elapsed / 60:.1f} minutes. "
        "Chart: [issue-time.png](issue-time.png). How it is measured: see Method at the end.",
        "",
        "## Machine and versions",
        "",
        *[f"- {k}: {v}" for k, v in {**info, **vers}.items()],
        "",
        "## Settings",
        "",
        f"- N reported: {' '.join(map(str, settings.sizes))}; plan (key:N:repeats:scope): {' '.join(':'.join(map(str, p)) for p in settings.plan)}",
        "- each repeat runs the ways back to back; medians of the repeats; a size not in the plan is extrapolated on the line "
        "through that way's measured medians (fixed cost + cost per robot) and marked so",
        f"- forks: {settings.forks}, for the role and for community.crypto alike",
        f"- community.crypto plan: {' '.join(':'.join(map(str, p)) for p in settings.community_plan)} (run once each)",
        f"- ServiceNow request counts at N = {' '.join(map(str, settings.snow_sizes))}",
        "",
    ]
    sections += METHOD
    (BENCH / "results.md").write_text(
        "\n".join(
            head + targets_section(harness) + timing_section(harness) + [""] + sections
        )
        + "\n",
        encoding="utf-8",
    )
    log(f"done in {elapsed / 60:.1f} minutes: bench/results.md, bench/issue-time.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
