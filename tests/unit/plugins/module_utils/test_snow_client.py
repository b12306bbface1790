"""The ServiceNow client: auth, retries, pagination, errors and the check-mode write layer.

The transport is ansible-core's Request.open, replaced by a recorder that answers from a script.
"""

from __future__ import annotations

import email.message
import io
import json
import ssl
import typing as t
import urllib.parse
from urllib.error import HTTPError, URLError

import pytest

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_client as snow,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    ServiceNowError,
)

PASSWORD = "s3cret-Passw0rd"
INSTANCE = {
    "host": "myco.service-now.com",
    "username": "admin",
    "password": PASSWORD,
    "timeout": 5.0,
    "validate_certs": True,
}


class Answer(t.NamedTuple):
    status: int
    body: t.Any = None
    headers: dict[str, str] = {}


class _Raw:
    def __init__(self, answer: Answer) -> None:
        self.status = answer.status
        self.headers = _headers(answer.headers)
        self._body = _bytes(answer.body)

    def read(self) -> bytes:
        return self._body

    def __enter__(self) -> _Raw:
        return self

    def __exit__(self, *args: t.Any) -> None:
        return None


def _headers(values: dict[str, str]) -> email.message.Message:
    message = email.message.Message()
    for key, value in values.items():
        message[key] = value
    return message


def _bytes(body: t.Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


class Transport:
    """Stands in for Request.open: records each call and answers from ANSWERS (or a function)."""

    def __init__(
        self, answers: list[Answer | BaseException] | t.Callable[..., Answer]
    ) -> None:
        self.answers = answers
        self.calls: list[dict[str, t.Any]] = []

    def __call__(
        self,
        method: str,
        url: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: t.Any,
    ) -> _Raw:
        call = {
            "method": method,
            "url": url,
            "data": data,
            "headers": dict(headers or {}),
            **kwargs,
        }
        self.calls.append(call)
        answer = self.answers(call) if callable(self.answers) else self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        if answer.status >= 400:
            raise HTTPError(
                url,
                answer.status,
                "error",
                _headers(answer.headers),
                io.BytesIO(_bytes(answer.body)),
            )
        return _Raw(answer)


def client(
    answers: t.Any,
    instance: dict[str, t.Any] | None = None,
    *,
    check_mode: bool = False,
) -> tuple[snow.SnowClient, Transport, list[float]]:
    sleeps: list[float] = []
    made = snow.SnowClient(
        dict(instance or INSTANCE), check_mode=check_mode, sleep=sleeps.append
    )
    transport = Transport(answers)
    made._http.open = transport  # type: ignore[method-assign]
    return made, transport, sleeps


def test_basic_auth_is_sent_by_request_and_never_as_a_header_we_build() -> None:
    made, transport, _ignored = client([Answer(200, {"result": [{"sys_id": "a"}]})])

    rows = made.list_records("sys_user", query="user_name=robot01", fields=("sys_id",))

    assert rows == [{"sys_id": "a"}]
    call = transport.calls[0]
    assert (
        call["force_basic_auth"] is True
        and call["url_username"] == "admin"
        and call["url_password"] == PASSWORD
    )
    assert "Authorization" not in call["headers"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(call["url"]).query))
    assert (
        query["sysparm_query"] == "user_name=robot01"
        and query["sysparm_fields"] == "sys_id"
    )
    assert call["url"].startswith(
        "https://myco.service-now.com/api/now/table/sys_user?"
    )


def test_api_key_goes_in_its_header() -> None:
    made, transport, _ignored = client(
        [Answer(200, {"result": []})], {"host": "h.example", "api_key": "KEY-123"}
    )

    made.list_records("sys_user")

    assert transport.calls[0]["headers"]["x-sn-apikey"] == "KEY-123"
    assert transport.calls[0]["force_basic_auth"] is False


def test_oauth_fetches_one_token_and_sends_it_as_bearer() -> None:
    answers = [
        Answer(200, {"access_token": "TOKEN-abc", "token_type": "Bearer"}),
        Answer(200, {"result": []}),
        Answer(200, {"result": []}),
    ]
    instance = {"host": "h.example", "client_id": "cid", "client_secret": "csecret"}
    made, transport, _ignored = client(answers, instance)

    made.list_records("sys_user")
    made.list_records("sys_user")

    token_call, first, second = transport.calls
    assert (
        token_call["method"] == "POST"
        and token_call["url"] == "https://h.example/oauth_token.do"
    )
    form = dict(urllib.parse.parse_qsl(token_call["data"].decode()))
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "cid",
        "client_secret": "csecret",
    }
    assert (
        first["headers"]["Authorization"]
        == "Bearer TOKEN-abc"
        == second["headers"]["Authorization"]
    )


def test_wrong_oauth_secret_is_one_line_naming_the_client_options() -> None:
    answers = [
        Answer(
            401,
            {"error": "access_denied", "error_description": "Invalid client secret"},
        )
    ]
    made, _ignored, sleeps = client(
        answers,
        {
            "host": "h.example",
            "client_id": "cid",
            "client_secret": "csecret",
            "username": "u",
            "password": "p",
        },
    )

    with pytest.raises(ServiceNowError) as caught:
        made.list_records("sys_user")

    message = str(caught.value)
    assert message.startswith(
        "POST /oauth_token.do failed with HTTP 401: access_denied (Invalid client secret)"
    )
    assert (
        "instance.client_secret" in message
        and "csecret" not in message
        and sleeps == []
    )


def test_429_waits_for_retry_after_then_succeeds() -> None:
    answers = [
        Answer(429, {"error": {"message": "Rate limit"}}, {"Retry-After": "7"}),
        Answer(200, {"result": []}),
    ]
    made, transport, sleeps = client(answers)

    made.list_records("sys_user")

    assert sleeps == [7.0] and len(transport.calls) == 2


def test_retry_after_is_capped() -> None:
    answers = [Answer(429, None, {"Retry-After": "3600"}), Answer(200, {"result": []})]
    made, _ignored, sleeps = client(answers)

    made.list_records("sys_user")

    assert sleeps == [snow.RETRY_AFTER_CAP]


def test_503_502_504_back_off_exponentially() -> None:
    answers = [Answer(503), Answer(502), Answer(504), Answer(200, {"result": []})]
    made, _ignored, sleeps = client(answers)

    made.list_records("sys_user")

    assert sleeps == [0.5, 1.0, 2.0]


def test_retries_are_bounded() -> None:
    made, transport, sleeps = client(lambda call: Answer(503, b"<html>busy</html>"))

    with pytest.raises(
        ServiceNowError,
        match=r"^GET /api/now/table/sys_user failed with HTTP 503; the instance stayed unavailable through every retry; "
        "run the task again once it answers$",
    ):
        made.list_records("sys_user")

    assert len(transport.calls) == snow.MAX_ATTEMPTS
    assert max(sleeps) == snow.BACKOFF_CAP and len(sleeps) == snow.MAX_ATTEMPTS - 1


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_never_retried(status: int) -> None:
    body = {
        "error": {"message": "No can do", "detail": f"echo {PASSWORD}"},
        "status": "failure",
    }
    made, transport, sleeps = client([Answer(status, body)])

    with pytest.raises(snow.ServiceNowRequestError) as caught:
        made.list_records("sys_ca_certificate")

    assert len(transport.calls) == 1 and sleeps == []
    error = caught.value
    assert (error.method, error.path, error.status) == (
        "GET",
        "/api/now/table/sys_ca_certificate",
        status,
    )
    message = str(error)
    assert message.startswith(
        f"GET /api/now/table/sys_ca_certificate failed with HTTP {status}: No can do"
    )
    assert PASSWORD not in message and "\n" not in message


def test_403_on_certificate_tables_names_sso_config_admin() -> None:
    made, _ignored, _ignored = client(
        [
            Answer(
                403,
                {
                    "error": {
                        "message": "Operation against file 'sys_ca_certificate' was aborted"
                    }
                },
            )
        ]
    )

    with pytest.raises(ServiceNowError, match="sso_config_admin"):
        made.list_records("sys_ca_certificate")


def test_pagination_follows_the_link_header_on_the_same_host() -> None:
    link = '<https://myco.service-now.com/api/now/table/sys_user?sysparm_offset=2&sysparm_limit=2&sysparm_query=active%3Dtrue>;rel="next"'
    answers = [
        Answer(200, {"result": [{"sys_id": "1"}, {"sys_id": "2"}]}, {"Link": link}),
        Answer(
            200,
            {"result": [{"sys_id": "3"}]},
            {
                "Link": '<https://myco.service-now.com/api/now/table/sys_user?sysparm_offset=0>;rel="first"'
            },
        ),
    ]
    made, transport, _ignored = client(answers)

    rows = made.list_records("sys_user", query="active=true", page_size=2)

    assert [r["sys_id"] for r in rows] == ["1", "2", "3"]
    second = urllib.parse.urlsplit(transport.calls[1]["url"])
    assert second.netloc == "myco.service-now.com"
    assert dict(urllib.parse.parse_qsl(second.query))["sysparm_offset"] == "2"


def test_a_link_to_another_path_is_not_followed() -> None:
    answers = [
        Answer(
            200,
            {"result": [{"sys_id": "1"}]},
            {"Link": '<https://evil.example/steal?sysparm_offset=1>;rel="next"'},
        )
    ]
    made, transport, _ignored = client(answers)

    assert made.list_records("sys_user") == [{"sys_id": "1"}]
    assert len(transport.calls) == 1


def test_in_lists_are_split_to_keep_urls_short() -> None:
    names = [f"robot{i:04d}" for i in range(2000)]
    made, transport, _ignored = client(lambda call: Answer(200, {"result": []}))

    made.list_in("sys_user", "user_name", names, fields=("sys_id",))

    assert 2 <= len(transport.calls) <= 5
    assert all(
        len(c["url"]) < snow.QUERY_CHUNK_CHARS * 3 + 500 for c in transport.calls
    )
    sent = []
    for call in transport.calls:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(call["url"]).query))[
            "sysparm_query"
        ]
        sent += query.removeprefix("user_nameIN").split(",")
    assert sent == names


def test_unknown_field_is_refused_before_any_request() -> None:
    made, transport, _ignored = client([])

    with pytest.raises(
        ServiceNowError, match="'usr_name' is not a known column of sys_user"
    ):
        made.list_records("sys_user", fields=("usr_name",))

    assert transport.calls == []


def test_check_mode_records_writes_and_sends_none() -> None:
    made, transport, _ignored = client([], check_mode=True)

    made.create("sys_properties", {"name": "x", "value": "y"})
    made.update("sys_properties", "a" * 32, {"value": "z"})
    made.delete("sys_properties", "a" * 32)
    made.attach(
        "sys_user_certificate", "b" * 32, "x.pem", b"pem", "application/x-pem-file"
    )
    made.post("/api/sn_cicd/plugin/x/activate")

    assert transport.calls == []
    assert [w.split()[0] for w in made.would_change] == [
        "POST",
        "PATCH",
        "DELETE",
        "POST",
        "POST",
    ]


def test_writes_send_json_or_raw_bodies_with_content_type() -> None:
    answers = [
        Answer(201, {"result": {"sys_id": "c" * 32}}),
        Answer(201, {"result": {"sys_id": "d" * 32}}),
    ]
    made, transport, _ignored = client(answers)

    made.create("sys_properties", {"name": "x", "value": "y"})
    made.attach(
        "sys_user_certificate", "b" * 32, "x.pem", b"PEMDATA", "application/x-pem-file"
    )

    create, attach = transport.calls
    assert (
        json.loads(create["data"]) == {"name": "x", "value": "y"}
        and create["headers"]["Content-Type"] == "application/json"
    )
    assert (
        attach["data"] == b"PEMDATA"
        and attach["headers"]["Content-Type"] == "application/x-pem-file"
    )
    assert "table_sys_id=" + "b" * 32 in attach["url"]


def test_tls_verification_failure_is_named() -> None:
    reason = ssl.SSLCertVerificationError(
        1,
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate",
    )
    made, _ignored, _ignored = client([URLError(reason)])

    with pytest.raises(
        ServiceNowError,
        match=r"TLS verification of myco.service-now.com failed .*instance.ca_path",
    ):
        made.list_records("sys_user")


def test_unreachable_host_is_named() -> None:
    made, _ignored, sleeps = client(
        [URLError(ConnectionRefusedError(111, "Connection refused"))]
    )

    with pytest.raises(
        ServiceNowError,
        match=r"cannot reach https://myco.service-now.com .*Connection refused",
    ):
        made.list_records("sys_user")

    assert sleeps == []


@pytest.mark.parametrize(
    ("instance", "phrase"),
    [
        ({"username": "u", "password": "p"}, "no instance host"),
        (
            {"host": "http://h.example", "username": "u", "password": "p"},
            "must use https",
        ),
        (
            {"host": "h.example/path", "username": "u", "password": "p"},
            "is not a host name",
        ),
        ({"host": "h.example", "username": "u"}, "no instance credentials"),
        (
            {"host": "h.example", "client_id": "c"},
            "needs both instance.client_id and instance.client_secret",
        ),
        (
            {
                "host": "h.example",
                "client_id": "c",
                "client_secret": "s",
                "grant_type": "password",
            },
            "password grant needs",
        ),
    ],
)
def test_bad_connection_options_are_one_clear_line(
    instance: dict[str, t.Any], phrase: str
) -> None:
    with pytest.raises(ServiceNowError, match=phrase):
        snow.SnowClient(instance)


def test_host_with_scheme_and_port() -> None:
    made = snow.SnowClient(
        {"host": "https://127.0.0.1:8443/", "username": "u", "password": "p"}
    )

    assert made.base_url == "https://127.0.0.1:8443" and made.host == "127.0.0.1"


def test_argspec_has_env_fallbacks_and_no_log_secrets() -> None:
    options = snow.INSTANCE_ARGSPEC["options"]
    fallbacks = {
        name: spec["fallback"][1][0]
        for name, spec in options.items()
        if "fallback" in spec
    }
    assert fallbacks == {
        "host": "SN_HOST",
        "username": "SN_USERNAME",
        "password": "SN_PASSWORD",
        "client_id": "SN_CLIENT_ID",
        "client_secret": "SN_CLIENT_SECRET",
        "api_key": "SN_API_KEY",
    }
    assert {name for name, spec in options.items() if spec.get("no_log")} == {
        "password",
        "client_secret",
        "api_key",
    }
    assert options["validate_certs"]["default"] is True


def test_check_mode_reads_a_missing_certificate_table_as_empty() -> None:
    not_found = Answer(404, {"error": {"message": "Invalid table sys_ca_certificate"}})
    made, _ignored, _ignored = client([not_found], check_mode=True)

    assert made.list_records("sys_ca_certificate") == []
    assert made.missing_tables == {"sys_ca_certificate"}

    real, _ignored, _ignored = client([not_found])
    with pytest.raises(
        ServiceNowError, match="only once the plugin com.glide.auth.mutual is active"
    ):
        real.list_records("sys_ca_certificate")


def test_an_expired_oauth_token_is_renewed_once() -> None:
    expired = Answer(401, {"error": {"message": "User Not Authenticated"}})
    answers = [
        Answer(200, {"access_token": "OLD"}),
        expired,
        Answer(200, {"access_token": "NEW"}),
        Answer(200, {"result": []}),
        expired,
        Answer(200, {"access_token": "NEWER"}),
        expired,
    ]
    made, transport, _ignored = client(
        answers, {"host": "h.example", "client_id": "cid", "client_secret": "csecret"}
    )

    assert made.list_records("sys_user") == []
    assert transport.calls[3]["headers"]["Authorization"] == "Bearer NEW"

    with pytest.raises(ServiceNowError, match="HTTP 401"):
        made.list_records("sys_user")
    assert len(transport.calls) == 7 and "NEWER" not in str(made.would_change)


def test_a_server_error_says_what_to_do() -> None:
    message = str(
        snow.SnowClient(dict(INSTANCE))._status_error(
            "POST",
            "/api/now/table/sys_user_certificate",
            500,
            b'{"error": {"message": "Operation Failed"}, "status": "failure"}',
        )
    )

    assert message == (
        "POST /api/now/table/sys_user_certificate failed with HTTP 500: Operation Failed; the instance failed while "
        "handling the request; check its system log (System Logs > Errors) for the cause, then run the task again"
    )
