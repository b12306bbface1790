"""PowerShell sources checked without PowerShell: syntax through tree-sitter-powershell, and each
module's $spec against its DOCUMENTATION (replacing validate-modules' pwsh-based check here)."""

from __future__ import annotations

import ast
import importlib
import re
import sys
import typing as t
from pathlib import Path

import pytest
import tree_sitter_powershell
import yaml
from tree_sitter import Language, Node, Parser

REPO = Path(__file__).resolve().parents[4]
PLUGINS = REPO / "plugins"
TARGETS = REPO / "tests" / "integration" / "targets"
PS_FILES = sorted(
    [*PLUGINS.rglob("*.ps1"), *PLUGINS.rglob("*.psm1"), *TARGETS.rglob("*.ps1")]
)
PS_MODULES = sorted((PLUGINS / "modules").glob("*.ps1"))
PARSER = Parser(Language(tree_sitter_powershell.language()))

# Options whose values are secrets must be no_log; DOCUMENTATION has no no_log key, so the rule is by name.
SECRET_NAME = re.compile(r"passphrase|password|secret|token|_content$")
VALUE_TYPES = {
    "hash_literal_expression",
    "array_expression",
    "array_literal_expression",
    "expression_with_unary_operator",
    "string_literal",
    "variable",
    "decimal_integer_literal",
    "hexadecimal_integer_literal",
}


class SpecError(ValueError):
    """The $spec holds something that is not a literal."""


def parse_errors(source: bytes) -> list[str]:
    """ERROR and MISSING nodes of SOURCE, as 'line:col text' strings."""
    tree = PARSER.parse(source)
    found: list[str] = []

    def walk(node: Node) -> None:
        if node.type == "ERROR" or node.is_missing:
            text = source[node.start_byte : node.end_byte][:60].decode(
                "utf-8", "replace"
            )
            found.append(
                f"{node.start_point[0] + 1}:{node.start_point[1] + 1} {node.type} {text!r}"
            )
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return found


def _text(node: Node, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8")


def _collapse(node: Node) -> Node:
    while node.type not in VALUE_TYPES and len(node.named_children) == 1:
        node = node.named_children[0]
    return node


def evaluate(node: Node, source: bytes) -> t.Any:
    """The Python value of a PowerShell literal (hashtable, array, string, number, $true/$false/$null)."""
    node = _collapse(node)
    kind = node.type
    if kind == "hash_literal_expression":
        result: dict[str, t.Any] = {}
        bodies = [c for c in node.named_children if c.type == "hash_literal_body"]
        for entry in bodies[0].named_children if bodies else []:
            if entry.type != "hash_entry":
                continue
            key = (
                evaluate(entry.named_children[0], source)
                if entry.named_children[0].type == "string_literal"
                else None
            )
            if key is None:
                key = _text(entry.named_children[0], source)
            if key in result:
                raise SpecError(f"duplicate key {key!r}")
            result[key] = evaluate(entry.named_children[-1], source)
        return result
    if kind == "array_expression":
        if not node.named_children:
            return []
        inner = evaluate(node.named_children[0], source)
        return inner if isinstance(inner, list) else [inner]
    if kind == "array_literal_expression":
        items = [evaluate(child, source) for child in node.named_children]
        # The grammar wraps every expression in this node; only commas make it an array.
        return items if any(child.type == "," for child in node.children) else items[0]
    if kind == "expression_with_unary_operator":
        operator = _text(node.children[0], source)
        operand = evaluate(node.named_children[-1], source)
        if operator == ",":
            return [operand]
        if operator == "-" and isinstance(operand, int):
            return -operand
        raise SpecError(f"unsupported operator {operator!r}")
    if kind == "string_literal":
        text = _text(node, source)
        if text.startswith("'"):
            return text[1:-1].replace("''", "'")
        if "$" in text or "`" in text:
            raise SpecError(f"expandable string {text} is not a literal")
        return text[1:-1]
    if kind == "variable":
        names = {"$true": True, "$false": False, "$null": None}
        text = _text(node, source).lower()
        if text not in names:
            raise SpecError(f"variable {text} in $spec is not a literal")
        return names[text]
    if kind == "decimal_integer_literal":
        return int(_text(node, source))
    if kind == "hexadecimal_integer_literal":
        return int(_text(node, source), 16)
    raise SpecError(f"{kind} {_text(node, source)[:40]!r} is not a literal")


def read_assignment(source: bytes, variable: str) -> t.Any:
    """The literal assigned to VARIABLE (for example $spec) at the top level of a script."""
    tree = PARSER.parse(source)
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "assignment_expression":
            target = _text(node.named_children[0], source).strip()
            if target.lower() == variable.lower():
                return evaluate(node.named_children[-1], source)
        if node.type not in ("function_statement", "script_block"):
            stack.extend(reversed(node.children))
    raise SpecError(f"no {variable} assignment found")


def read_spec(source: bytes) -> dict[str, t.Any]:
    """The value assigned to $spec at the top level of a module."""
    return read_assignment(source, "$spec")


def read_documentation(path: Path) -> dict[str, t.Any]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and getattr(node.targets[0], "id", None) == "DOCUMENTATION"
        ):
            return yaml.safe_load(node.value.value)
    raise AssertionError(f"{path} has no DOCUMENTATION")


def _normal(option: t.Mapping[str, t.Any], *, name: str, doc: bool) -> dict[str, t.Any]:
    normal = {
        "type": option.get("type", "str"),
        "default": option.get("default"),
        "choices": list(option["choices"])
        if option.get("choices") is not None
        else None,
        "required": bool(option.get("required", False)),
        "aliases": sorted(option.get("aliases") or []),
        "elements": option.get("elements"),
        "no_log": bool(SECRET_NAME.search(name))
        if doc
        else bool(option.get("no_log", False)),
    }
    return normal


def compare_options(
    spec_options: t.Mapping[str, t.Mapping[str, t.Any]],
    doc_options: t.Mapping[str, t.Mapping[str, t.Any]],
    *,
    controller_only: t.Collection[str] = (),
    what: str = "$spec",
) -> list[str]:
    """Differences between an argument spec and the documented options, one line each."""
    problems: list[str] = []
    for name, option in spec_options.items():
        if name.startswith("_"):
            # Internal options the action plugin fills in; they must stay out of the user docs and be hidden.
            if name in doc_options:
                problems.append(f"{what}: internal option {name} is documented")
            continue
        if name not in doc_options:
            problems.append(f"{what}: option {name} is not documented")
            continue
        have = _normal(option, name=name, doc=False)
        want = _normal(doc_options[name], name=name, doc=True)
        for key in have:
            if have[key] != want[key]:
                problems.append(
                    f"{what}: option {name} {key} is {have[key]!r}, documentation says {want[key]!r}"
                )
    for name in doc_options:
        if name not in spec_options and name not in controller_only:
            problems.append(f"{what}: documented option {name} is missing")
    return problems


def check_spec_rules(spec: t.Mapping[str, t.Any]) -> list[str]:
    """Spec-level rules: check mode supported, option cross-references exist, no_log on secrets."""
    problems: list[str] = []
    options = spec.get("options") or {}
    if spec.get("supports_check_mode") is not True:
        problems.append("supports_check_mode is not $true")
    for rule in ("mutually_exclusive", "required_together", "required_one_of"):
        for group in spec.get(rule) or []:
            problems += [
                f"{rule} names unknown option {name}"
                for name in group
                if name not in options
            ]
    for entry in spec.get("required_if") or []:
        names = [entry[0], *entry[2]]
        problems += [
            f"required_if names unknown option {name}"
            for name in names
            if name not in options
        ]
    for name, option in options.items():
        if SECRET_NAME.search(name) and option.get("no_log") is not True:
            problems.append(f"option {name} holds a secret but is not no_log")
        if option.get("type") not in (
            None,
            "str",
            "bool",
            "int",
            "list",
            "dict",
            "path",
            "raw",
            "float",
        ):
            problems.append(f"option {name} has unknown type {option.get('type')!r}")
    return problems


def _action_spec(module: str) -> dict[str, t.Any] | None:
    """The argument spec of the module's action plugin, if it has one."""
    if not (PLUGINS / "action" / f"{module}.py").exists():
        return None
    action = importlib.import_module(
        f"ansible_collections.snowrpa.robot_certs.plugins.action.{module}"
    )
    return action.ARGUMENT_SPEC


# Calls that change a host: store writes, the persisting PKCS#12 load, key security writes, store properties.
SIDE_EFFECT_RECEIVERS = {
    "$store",
    "$collection",
    "[SnowRpa.RobotCerts.KeyAcl.KeySecurity]",
}
SIDE_EFFECT_METHODS = {"Add", "Remove", "Import", "SetSecurityDescriptor"}
CHECK_MODE_GUARDS = ("-not $module.CheckMode", "-not $CheckMode")


def _side_effects(root: Node, source: bytes) -> list[Node]:
    found: list[Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "invokation_expression" and len(node.named_children) >= 2:
            receiver = _text(node.named_children[0], source)
            method = _text(node.named_children[1], source)
            if receiver in SIDE_EFFECT_RECEIVERS and method in SIDE_EFFECT_METHODS:
                found.append(node)
        if node.type == "assignment_expression" and _text(
            node.named_children[0], source
        ).endswith(".FriendlyName"):
            found.append(node)
        stack.extend(node.children)
    return found


def _guarded(node: Node, source: bytes) -> bool:
    """True when NODE sits in the then-block of an if whose condition excludes check mode."""
    child, parent = node, node.parent
    while parent is not None:
        if parent.type == "if_statement":
            blocks = [c for c in parent.children if c.type == "statement_block"]
            condition = " ".join(_text(parent.named_children[0], source).split())
            if (
                blocks
                and blocks[0] == child
                and any(guard in condition for guard in CHECK_MODE_GUARDS)
            ):
                return True
        child, parent = parent, parent.parent
    return False


def _function_of(node: Node, source: bytes) -> str | None:
    parent = node.parent
    while parent is not None:
        if parent.type == "function_statement":
            names = [c for c in parent.children if c.type == "function_name"]
            return _text(names[0], source) if names else None
        parent = parent.parent
    return None


def _calls(root: Node, source: bytes, name: str) -> list[Node]:
    found: list[Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if (
            node.type == "command"
            and node.named_children
            and _text(node.named_children[0], source) == name
        ):
            found.append(node)
        stack.extend(node.children)
    return found


def unguarded_side_effects(sources: t.Mapping[str, bytes]) -> list[str]:
    """Side effects outside a check-mode guard, directly or through an unguarded helper's call sites."""
    trees = {name: PARSER.parse(source).root_node for name, source in sources.items()}
    problems: list[str] = []
    for name, root in trees.items():
        source = sources[name]
        for node in _side_effects(root, source):
            if _guarded(node, source):
                continue
            function = _function_of(node, source)
            where = f"{name}:{node.start_point[0] + 1} {_text(node, source)[:50]!r}"
            if function is None:
                problems.append(f"{where} runs in check mode")
                continue
            for other, other_root in trees.items():
                for call in _calls(other_root, sources[other], function):
                    if not _guarded(call, sources[other]):
                        problems.append(
                            f"{where} runs in check mode through {function} at {other}:{call.start_point[0] + 1}"
                        )
    return problems


@pytest.mark.parametrize("path", PS_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_powershell_parses_without_errors(path: Path) -> None:
    assert parse_errors(path.read_bytes()) == []


@pytest.mark.parametrize("path", PS_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_powershell_layout(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [n for n, line in enumerate(lines, 1) if len(line) > 120] == []
    assert [n for n, line in enumerate(lines, 1) if "\t" in line] == []
    assert [n for n, line in enumerate(lines, 1) if line != line.rstrip()] == []
    # Braces on the same line: no line that is only an opening brace (inline C# here-strings aside).
    script = re.sub(r"@'\n.*?\n'@", "", "\n".join(lines), flags=re.S)
    assert [line for line in script.splitlines() if line.strip() == "{"] == []


@pytest.mark.parametrize("path", PS_MODULES, ids=lambda p: p.name)
def test_module_header_and_requires(path: Path) -> None:
    text = path.read_text(encoding="utf-8")

    assert text.startswith("#!powershell\n")
    assert "#AnsibleRequires -CSharpUtil Ansible.Basic" in text
    assert "[Ansible.Basic.AnsibleModule]::Create($args, $spec)" in text
    for util in re.findall(
        r"#AnsibleRequires -PowerShell \.\.module_utils\.(\S+)", text
    ):
        assert (PLUGINS / "module_utils" / f"{util}.psm1").exists(), util
    assert (path.with_suffix(".py")).exists(), "doc-only .py beside the .ps1"


@pytest.mark.parametrize("path", PS_MODULES, ids=lambda p: p.name)
def test_spec_matches_documentation(path: Path) -> None:
    spec = read_spec(path.read_bytes())
    doc = read_documentation(path.with_suffix(".py"))
    action = _action_spec(path.stem)

    problems = check_spec_rules(spec)
    if action is None:
        problems += compare_options(spec["options"], doc["options"])
    else:
        # Options the action plugin consumes on the controller are documented but never reach the host.
        controller_only = set(action) - set(spec["options"])
        problems += compare_options(
            spec["options"], doc["options"], controller_only=controller_only
        )
        problems += compare_options(action, doc["options"], what="action ARGUMENT_SPEC")

    assert problems == []
    assert doc["version_added"] == "0.1.0"
    assert {"check_mode", "diff_mode", "idempotent"} <= set(doc["attributes"])
    if action is not None:
        assert "action" in doc["attributes"]


def test_win_cert_import_sends_only_host_options() -> None:
    """What the action plugin builds for the host is exactly what the PowerShell spec accepts."""
    from ansible_collections.snowrpa.robot_certs.plugins.module_utils._win_import import (
        build_module_args,
    )

    spec = read_spec((PLUGINS / "modules" / "win_cert_import.ps1").read_bytes())
    params = {
        "state": "absent",
        "store_location": "LocalMachine",
        "store_name": "My",
        "key_storage": "auto",
        "exportable": False,
        "remove_superseded": False,
        "key_readers": [],
        "key_readers_exact": False,
        "thumbprint": "A" * 40,
    }
    sent = build_module_args(None, params, payload=None, passphrase=None)
    internal = {
        "_plan",
        "_pkcs12_content",
        "_pkcs12_passphrase",
        "_pkcs12_legacy_content",
    }

    assert set(sent) <= set(spec["options"])
    assert internal <= set(spec["options"])
    for name in internal - {"_plan"}:
        assert spec["options"][name]["no_log"] is True, name


def _if_conditions(source: bytes) -> list[str]:
    root = PARSER.parse(source).root_node
    found: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "if_statement":
            found.append(" ".join(_text(node.named_children[0], source).split()))
        stack.extend(node.children)
    return found


def test_win_cert_import_host_picks_the_legacy_copy_only_by_its_build() -> None:
    """The one decision left to the host: the fallback is used only under the build check, nowhere else."""
    source = (PLUGINS / "modules" / "win_cert_import.ps1").read_bytes()
    text = source.decode("utf-8")

    uses = [
        line.strip()
        for line in text.splitlines()
        if ("$pkcs12LegacyContent" in line or "_pkcs12_legacy_content" in line)
        and not line.lstrip().startswith("#")
    ]
    conditions = _if_conditions(source)

    assert uses == [
        "_pkcs12_legacy_content = @{ type = 'str'; no_log = $true }",
        "$pkcs12LegacyContent = $module.Params._pkcs12_legacy_content",
        "if ($pkcs12LegacyContent) {",
        "$pkcs12Content = $pkcs12LegacyContent",
    ]
    assert (
        "[int]$plan.min_build -gt 0 -and $osBuild -lt [int]$plan.min_build"
        in conditions
    )
    # The fallback test sits inside the build test, and the import reads $pkcs12Content after both.
    build_check = text.index("$osBuild -lt [int]$plan.min_build")
    assert build_check < text.index("if ($pkcs12LegacyContent)")
    assert text.index("$module.Result.profile = $importProfile") < text.index(
        "FromBase64String($pkcs12Content)"
    )


def test_side_effects_only_outside_check_mode() -> None:
    util = PLUGINS / "module_utils" / "_RobotCertKeyAcl.psm1"
    sources = {p.name: p.read_bytes() for p in [*PS_MODULES, util]}

    assert unguarded_side_effects(sources) == []
    # The checker sees the real side effects, so an empty answer means something.
    counted = sum(
        len(_side_effects(PARSER.parse(src).root_node, src)) for src in sources.values()
    )
    assert counted == 7


class TestTheCheckerCatches:
    def test_a_syntax_error(self) -> None:
        broken = b"$spec = @{ options = @{ a = @{ type = 'str' }\nFunction Get-X { param([string]$A) if ($A { } }\n"

        assert parse_errors(broken) != []

    def test_a_missing_brace_in_a_real_module(self) -> None:
        source = (PLUGINS / "modules" / "win_key_acl.ps1").read_bytes()
        broken = source.replace(
            b"$module.Result.changed = $access.changed\n", b"if ($true) {\n", 1
        )

        assert parse_errors(broken) != []

    def test_spec_values(self) -> None:
        spec = read_spec(
            b"$spec = @{\n    options = @{\n        a = @{ type = 'list'; elements = 'str'; default = @() }\n"
            b"        b = @{ choices = 'x', \"y\"; default = 'x' }\n        c = @{ type = 'int'; default = -3 }\n    }\n"
            b"    required_if = @(\n        , @('b', 'x', @('a'))\n    )\n    supports_check_mode = $true\n}\n"
        )

        assert spec == {
            "options": {
                "a": {"type": "list", "elements": "str", "default": []},
                "b": {"choices": ["x", "y"], "default": "x"},
                "c": {"type": "int", "default": -3},
            },
            "required_if": [["b", "x", ["a"]]],
            "supports_check_mode": True,
        }

    def test_non_literal_spec(self) -> None:
        with pytest.raises(SpecError, match="not a literal"):
            read_spec(b"$spec = @{ options = @{ a = @{ default = $env:TEMP } } }")

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            (
                {"store_name": {"type": "str", "default": "Root"}},
                "option store_name default is 'Root', documentation says 'My'",
            ),
            (
                {"rights": {"type": "str", "default": "read", "choices": ["read"]}},
                "option rights choices",
            ),
            (
                {"exact": {"type": "str", "default": False}},
                "option exact type is 'str'",
            ),
            (
                {"users": {"type": "list", "elements": "str"}},
                "option users required is False",
            ),
            ({"extra": {"type": "str"}}, "option extra is not documented"),
            (
                {"thumbprint": {"type": "str", "required": True, "aliases": ["tp"]}},
                "option thumbprint aliases",
            ),
        ],
    )
    def test_a_spec_doc_mismatch(self, change: dict[str, t.Any], expected: str) -> None:
        spec = read_spec((PLUGINS / "modules" / "win_key_acl.ps1").read_bytes())
        doc = read_documentation(PLUGINS / "modules" / "win_key_acl.py")
        options = dict(spec["options"], **change)

        problems = compare_options(options, doc["options"])

        assert any(expected in problem for problem in problems), problems

    def test_a_documented_option_missing_from_spec(self) -> None:
        spec = read_spec((PLUGINS / "modules" / "win_cert_info.ps1").read_bytes())
        doc = read_documentation(PLUGINS / "modules" / "win_cert_info.py")
        options = {k: v for k, v in spec["options"].items() if k != "purpose"}

        assert compare_options(options, doc["options"]) == [
            "$spec: documented option purpose is missing"
        ]

    def test_a_secret_without_no_log(self) -> None:
        spec = {
            "options": {"pkcs12_passphrase": {"type": "str"}},
            "supports_check_mode": True,
        }

        assert check_spec_rules(spec) == [
            "option pkcs12_passphrase holds a secret but is not no_log"
        ]

    def test_no_log_mismatch_against_docs(self) -> None:
        problems = compare_options(
            {"key_passphrase": {"type": "str"}}, {"key_passphrase": {"type": "str"}}
        )

        assert problems == [
            "$spec: option key_passphrase no_log is False, documentation says True"
        ]

    def test_check_mode_and_cross_references(self) -> None:
        spec = {
            "options": {"a": {}},
            "required_if": [["a", "x", ["b"]]],
            "mutually_exclusive": [["a", "c"]],
        }

        assert check_spec_rules(spec) == [
            "supports_check_mode is not $true",
            "mutually_exclusive names unknown option c",
            "required_if names unknown option b",
        ]

    def test_a_side_effect_in_check_mode(self) -> None:
        source = (
            b"Function Import-Thing {\n    param ([string]$A)\n    $collection.Import($A)\n}\n"
            b"if (-not $module.CheckMode) {\n    Import-Thing -A 'x'\n}\nelse {\n    $store.Add($cert)\n}\n"
            b"Import-Thing -A 'y'\n$cert.FriendlyName = 'n'\n"
        )

        problems = unguarded_side_effects({"m.ps1": source})

        assert sorted(problems) == [
            "m.ps1:12 \"$cert.FriendlyName = 'n'\" runs in check mode",
            "m.ps1:3 '$collection.Import($A)' runs in check mode through Import-Thing at m.ps1:11",
            "m.ps1:9 '$store.Add($cert)' runs in check mode",
        ]


def _module_calls(
    data: t.Any, modules: t.Collection[str]
) -> t.Iterator[tuple[str, dict[str, t.Any]]]:
    """Every (module, args) task call in a loaded YAML document, blocks and plays included."""
    if isinstance(data, list):
        for item in data:
            yield from _module_calls(item, modules)
    elif isinstance(data, dict):
        for key, value in data.items():
            if key in modules and isinstance(value, dict):
                yield key, value
            else:
                yield from _module_calls(value, modules)


def test_playbooks_use_only_documented_options() -> None:
    """Targets, the molecule scenario, roles and playbooks call the Windows modules with real options."""
    documented = {
        f"snowrpa.robot_certs.{path.stem}": set(
            read_documentation(path.with_suffix(".py"))["options"]
        )
        for path in PS_MODULES
    }
    places = [TARGETS, REPO / "extensions", REPO / "roles", REPO / "playbooks"]
    calls = 0
    problems = []
    for place in places:
        for path in sorted(place.rglob("*.yml")):
            for module, args in _module_calls(
                yaml.safe_load(path.read_text(encoding="utf-8")), documented
            ):
                calls += 1
                unknown = set(args) - documented[module]
                if unknown:
                    problems.append(
                        f"{path.relative_to(REPO)}: {module} has unknown options {sorted(unknown)}"
                    )

    assert problems == []
    assert calls >= 40


def test_info_purposes_are_the_controllers_ekus() -> None:
    """win_cert_info filters on the same EKUs the controller checks before an import."""
    from ansible_collections.snowrpa.robot_certs.plugins.module_utils._pki import (
        PURPOSE_EKU,
    )

    source = (PLUGINS / "modules" / "win_cert_info.ps1").read_bytes()
    oids = read_assignment(source, "$purposeOids")
    spec = read_spec(source)

    assert oids == {name: oid.dotted_string for name, oid in PURPOSE_EKU.items()}
    assert sorted(spec["options"]["purpose"]["choices"]) == sorted(PURPOSE_EKU)


def test_provision_runs_at_most_two_modules_per_windows_host() -> None:
    """The issue's target, from the same static count bench/results.md reports."""
    sys.path.insert(0, str(REPO / "bench"))
    import counts

    tasks = counts.windows_tasks()
    on_host = [
        task
        for task in tasks
        if not task["delegated"] and task["action"] not in counts.CONTROLLER_ONLY
    ]

    assert [task["action"] for task in on_host] == [
        "snowrpa.robot_certs.win_cert_import",
        "snowrpa.robot_certs.win_cert_import",
    ]
    assert not any(task["loop"] for task in on_host)
    assert not [task for task in tasks if task["action"] in counts.FILE_TRANSFERS]
    # The build-reading run is gone whatever the inventory says.
    assert not [task for task in tasks if task["action"] == "ansible.builtin.setup"]
