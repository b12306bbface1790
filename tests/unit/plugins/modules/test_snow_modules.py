"""The six ServiceNow modules as Ansible runs them: argument specs match the docs, env fallbacks,
one-line failures, and no secret in the output. The transport (Request.open) is replaced."""

from __future__ import annotations

import email.message
import importlib
import io
import json
import typing as t
from unittest import mock
from urllib.error import HTTPError

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.snowrpa.robot_certs.plugins.doc_fragments.instance import (
    ModuleDocFragment,
)

MODULES = (
    "snow_cba_info",
    "snow_plugin",
    "snow_property",
    "snow_ca_register",
    "snow_user_cert",
    "snow_cert_info",
)
PACKAGE = "ansible_collections.snowrpa.robot_certs.plugins.modules."
PASSWORD = "Very-Secret-Pw-42"


def _load(name: str) -> t.Any:
    return importlib.import_module(PACKAGE + name)


class _Captured(Exception):
    pass


def _argument_spec(name: str) -> dict[str, t.Any]:
    """The argument_spec main() builds, caught at the AnsibleModule call."""
    module = _load(name)
    seen: dict[str, t.Any] = {}

    def fake(**kwargs: t.Any) -> t.NoReturn:
        seen.update(kwargs)
        raise _Captured

    with (
        mock.patch.object(module, "AnsibleModule", side_effect=fake),
        pytest.raises(_Captured),
    ):
        module.main()
    return seen["argument_spec"]


def _compare(doc: dict[str, t.Any], spec: dict[str, t.Any], where: str) -> None:
    assert set(doc) == set(spec), (
        f"{where}: documented {sorted(doc)} but the spec has {sorted(spec)}"
    )
    for option, documented in doc.items():
        actual = spec[option]
        assert documented.get("type", "str") == actual.get("type", "str"), (
            f"{where}.{option} type"
        )
        assert documented.get("default") == actual.get("default"), (
            f"{where}.{option} default"
        )
        assert documented.get("choices") == actual.get("choices"), (
            f"{where}.{option} choices"
        )
        assert bool(documented.get("required", False)) == bool(
            actual.get("required", False)
        ), f"{where}.{option} required"
        if "suboptions" in documented:
            _compare(documented["suboptions"], actual["options"], f"{where}.{option}")


@pytest.mark.parametrize("name", MODULES)
def test_docs_match_the_argument_spec(name: str) -> None:
    module = _load(name)
    doc = yaml.safe_load(module.DOCUMENTATION)
    fragment = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)
    options = {**doc.get("options", {}), **fragment["options"]}

    _compare(options, _argument_spec(name), name)

    assert doc["version_added"] == "0.1.0" and doc["module"] == name
    assert {"check_mode", "diff_mode", "idempotent"} <= set(doc["attributes"])
    assert any("[infer]" in note for note in doc["notes"]) or name in ("snow_property",)
    assert module.EXAMPLES.lstrip().startswith("---")
    examples = yaml.safe_load(module.EXAMPLES)
    # An example may be a whole play (to show module_defaults); its tasks are checked then.
    examples = [task for item in examples for task in item.get("tasks", [item])]
    assert examples and all(
        any(
            k.startswith("snowrpa.robot_certs.") or k.startswith("ansible.builtin.")
            for k in task
        )
        for task in examples
    )
    assert yaml.safe_load(module.RETURN)


class _Raw:
    def __init__(
        self, status: int, body: t.Any, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.headers = email.message.Message()
        for key, value in (headers or {}).items():
            self.headers[key] = value
        self._body = json.dumps(body).encode()

    def read(self) -> bytes:
        return self._body

    def __enter__(self) -> _Raw:
        return self

    def __exit__(self, *args: t.Any) -> None:
        return None


def _run(
    name: str,
    args: dict[str, t.Any],
    answer: t.Callable[..., _Raw],
    capsys: pytest.CaptureFixture[str],
) -> tuple[dict[str, t.Any], list[dict[str, t.Any]]]:
    calls: list[dict[str, t.Any]] = []

    def fake_open(self: t.Any, method: str, url: str, **kwargs: t.Any) -> _Raw:
        calls.append({"method": method, "url": url, **kwargs})
        return answer(method, url)

    with (
        patch_module_args(args),
        mock.patch("ansible.module_utils.urls.Request.open", fake_open),
        pytest.raises(SystemExit),
    ):
        _load(name).main()
    return json.loads(capsys.readouterr().out), calls


def test_instance_comes_from_sn_environment_variables(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SN_HOST", "env.service-now.com")
    monkeypatch.setenv("SN_USERNAME", "envadmin")
    monkeypatch.setenv("SN_PASSWORD", PASSWORD)
    record = {
        "sys_id": "1" * 32,
        "name": "glide.authenticate.mutual.enabled",
        "value": "true",
        "type": "true|false",
    }

    output, calls = _run(
        "snow_property",
        {"name": "glide.authenticate.mutual.enabled", "value": True},
        lambda method, url: _Raw(200, {"result": [record]}),
        capsys,
    )

    assert output["changed"] is False and output["property"]["value"] == "true"
    assert calls[0]["url"].startswith(
        "https://env.service-now.com/api/now/table/sys_properties?"
    )
    assert calls[0]["url_username"] == "envadmin"
    assert PASSWORD not in json.dumps(output)


def test_a_401_fails_with_one_line_and_no_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refuse(method: str, url: str) -> t.NoReturn:
        headers = email.message.Message()
        body = json.dumps(
            {
                "error": {
                    "message": "User Not Authenticated",
                    "detail": "Required to provide Auth information",
                },
                "status": "failure",
            }
        )
        raise HTTPError(url, 401, "Unauthorized", headers, io.BytesIO(body.encode()))

    output, calls = _run(
        "snow_cba_info",
        {"instance": {"host": "h.example", "username": "u", "password": PASSWORD}},
        refuse,
        capsys,
    )

    assert output["failed"] is True and len(calls) == 1
    assert output["msg"].startswith(
        "GET /api/now/table/v_plugin failed with HTTP 401: User Not Authenticated"
    )
    assert "\n" not in output["msg"] and PASSWORD not in json.dumps(output)


def test_pem_with_a_key_fails_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    content = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"

    output, calls = _run(
        "snow_user_cert",
        {
            "instance": {"host": "h.example", "username": "u", "password": PASSWORD},
            "user": "robot01",
            "name": "r",
            "pem_content": content,
        },
        lambda method, url: _Raw(200, {"result": []}),
        capsys,
    )

    assert output["failed"] is True and calls == []
    assert "holds a private key" in output["msg"] and "MIIE" not in json.dumps(output)


def test_single_mapping_and_mappings_are_mutually_exclusive(
    capsys: pytest.CaptureFixture[str],
) -> None:
    output, calls = _run(
        "snow_user_cert",
        {
            "instance": {"host": "h.example", "username": "u", "password": PASSWORD},
            "user": "r",
            "mappings": [{"user": "x"}],
        },
        lambda method, url: _Raw(200, {"result": []}),
        capsys,
    )

    assert (
        output["failed"] is True
        and "mutually exclusive" in output["msg"]
        and calls == []
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"name": "a", "value": "1", "properties": [{"name": "b", "value": "2"}]},
            "parameters are mutually exclusive: name|properties",
        ),
        ({}, "one of the following is required: name, properties"),
        ({"name": "a"}, "missing parameter(s) required by 'name': value"),
    ],
)
def test_snow_property_takes_one_name_and_value_or_a_list(
    args: dict[str, t.Any], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    output, calls = _run(
        "snow_property",
        {
            "instance": {"host": "h.example", "username": "u", "password": PASSWORD},
            **args,
        },
        lambda method, url: _Raw(200, {"result": []}),
        capsys,
    )

    assert output["failed"] is True and calls == []
    assert output["msg"] == message


def test_snow_property_list_sends_one_read_for_an_unchanged_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stored = [
        {"sys_id": "1" * 32, "name": "a", "value": "1", "type": "string"},
        {"sys_id": "2" * 32, "name": "b", "value": "true", "type": "true|false"},
    ]

    output, calls = _run(
        "snow_property",
        {
            "instance": {"host": "h.example", "username": "u", "password": PASSWORD},
            "properties": [{"name": "a", "value": 1}, {"name": "b", "value": True}],
        },
        lambda method, url: _Raw(200, {"result": stored}),
        capsys,
    )

    assert output["changed"] is False, output
    assert [c["method"] for c in calls] == ["GET"]
    assert "nameINa%2Cb" in calls[0]["url"] or "nameINa,b" in calls[0]["url"]
    assert [p["changed"] for p in output["properties"]] == [False, False]
