"""The HTML report: self-contained, and it lists every problem in plain words."""

from __future__ import annotations

import datetime
import html
import html.parser
import typing as t
from pathlib import Path

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _report
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._report_html import (
    render_html,
)
from tests.unit.plugins.module_utils.test_report import (
    DAY,
    NOW,
    Pki,
    healthy_snow,
    installed,
    robot,
)


class Page(html.parser.HTMLParser):
    """Collects what a self-containment check and a reader need: tags, URLs, text and problem rows."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self.rows: list[dict[str, str]] = []
        self._row: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        for name in ("src", "href", "xlink:href", "action", "srcset", "data"):
            if values.get(name):
                self.urls.append(str(values[name]))
        if tag == "tr" and "finding" in (values.get("class") or ""):
            self._row = {
                "class": values["class"] or "",
                "kind": values.get("data-kind") or "",
                "text": "",
            }
            self.rows.append(self._row)

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._row is not None:
            self._row["text"] += data


def fleet(tmp_path: Path) -> dict[str, t.Any]:
    pki = Pki(tmp_path)
    robots = [
        robot(pki, "robot01"),
        robot(pki, "robot02", client_days=5),
        robot(pki, "robot03", signing_days=-20),
        robot(pki, "robot<04>"),
    ]
    for entry in robots:
        entry["windows"] = installed(entry)
    robots[0]["windows"] = {"status": "unreachable", "message": "connection refused"}
    robots[3]["windows"] = installed(robots[3], acl=[])
    ca = _report.load_certificate(pki.ca_path, what="CA certificate")
    snow = healthy_snow(ca, robots)
    snow["mappings"] = snow["mappings"][1:]
    snow["cas"][0]["publish_status"] = "failed"
    return _report.build_report(
        robots=robots, ca=ca, servicenow=snow, now=NOW, warn_days=30
    )


def parse(page: bytes) -> Page:
    parser = Page()
    parser.feed(page.decode("utf-8"))
    parser.close()
    return parser


def test_page_is_self_contained(tmp_path: Path) -> None:
    page = parse(render_html(fleet(tmp_path)))

    assert page.urls == []
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(page.tags)
    assert "style" in page.tags and "svg" in page.tags


def test_page_lists_every_problem_most_severe_first(tmp_path: Path) -> None:
    report = fleet(tmp_path)

    page = parse(render_html(report))

    assert [r["kind"] for r in page.rows] == [f["kind"] for f in report["findings"]]
    assert {r["kind"] for r in page.rows} >= {
        "ca_not_published",
        "mapping_missing",
        "host_unreachable",
        "cert_expiring",
        "cert_expired",
        "key_acl_no_read",
    }
    for row, finding in zip(page.rows, report["findings"], strict=True):
        assert finding["message"] in row["text"]
        assert finding["action"] in row["text"]
        assert (finding["robot"] or "All robots") in row["text"]
    severities = [r["class"].split()[1] for r in page.rows]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    # Robot names are escaped text, never markup.
    assert "robot<04>" in "".join(page.text)


def test_page_shows_counts_timeline_today_and_warning_window(tmp_path: Path) -> None:
    report = fleet(tmp_path)

    text = "".join(parse(render_html(report)).text)

    assert f"{report['summary']['findings']['error']} problems need action now" in text
    assert f"today {NOW.date().isoformat()}" in text
    assert "warning window: 30 days" in text
    assert (NOW + 5 * DAY).date().isoformat() in text
    assert (
        text.index("Problems (") < text.index("Expiry timeline") < text.index("Robots")
    )


def test_page_is_deterministic_and_calm_when_all_is_well(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    robots = [robot(pki, "robot01")]
    ca = _report.load_certificate(pki.ca_path, what="CA certificate")
    report = _report.build_report(
        robots=robots,
        ca=ca,
        servicenow=healthy_snow(ca, robots),
        now=NOW + datetime.timedelta(hours=0),
        warn_days=30,
    )

    first, second = (
        render_html(report),
        render_html(
            _report.build_report(
                robots=robots,
                ca=ca,
                servicenow=healthy_snow(ca, robots),
                now=NOW,
                warn_days=30,
            )
        ),
    )

    assert first == second
    text = "".join(parse(first).text)
    assert "The robot is in order" in text
    assert "No problems found." in text


def _banner_text(page: bytes) -> str:
    text = page.decode("utf-8")
    start = text.index('role="status">') + len('role="status">')
    return html.unescape(text[start : text.index("</div>", start)])


def test_headline_says_what_was_checked(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    robots = [robot(pki, f"robot0{i}") for i in range(1, 6)]
    ca = _report.load_certificate(pki.ca_path, what="CA certificate")

    skipped = _report.build_report(
        robots=robots, ca=ca, servicenow=healthy_snow(ca, robots), now=NOW, warn_days=30
    )
    for entry in robots:
        entry["windows"] = installed(entry)
    checked = _report.build_report(
        robots=robots, ca=ca, servicenow=healthy_snow(ca, robots), now=NOW, warn_days=30
    )
    no_snow = _report.build_report(
        robots=robots, ca=ca, servicenow=None, now=NOW, warn_days=30
    )

    assert _banner_text(render_html(skipped)) == (
        "All 5 robots are in order: certificates valid and mapped in ServiceNow; "
        "Windows stores not checked for 5 robots (no Windows host)."
    )
    assert _banner_text(render_html(checked)) == (
        "All 5 robots are in order: certificates valid, mapped in ServiceNow "
        "and installed as expected on their Windows hosts."
    )
    assert _banner_text(render_html(no_snow)) == (
        "All 5 robots are in order: certificates valid and installed as expected "
        "on their Windows hosts; ServiceNow not checked."
    )


def test_thumbprints_wrap_only_between_groups_of_eight(tmp_path: Path) -> None:
    report = fleet(tmp_path)
    thumbprint = report["robots"][0]["certificates"]["client"]["thumbprint"]

    page = render_html(report).decode("utf-8")

    groups = [thumbprint[i : i + 8] for i in range(0, 40, 8)]
    assert "".join(parse(page.encode()).text).count(" ".join(groups)) == 1
    css = page[page.index("<style>") : page.index("</style>")]
    thumb_rule = css[css.index(".thumb {") : css.index("}", css.index(".thumb {"))]
    assert "break-all" not in thumb_rule and "overflow-wrap" not in thumb_rule
    assert ".thumb span { white-space:nowrap; }" in css


def test_notes_are_listed_but_not_counted_as_problems(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    robots = [robot(pki, "robot01")]
    robots[0]["windows"] = {"status": "not_collected", "message": None}
    ca = _report.load_certificate(pki.ca_path, what="CA certificate")

    page = parse(
        render_html(
            _report.build_report(
                robots=robots, ca=ca, servicenow=None, now=NOW, warn_days=30
            )
        )
    )

    text = "".join(page.text)
    assert (
        "Problems (0), most severe first, then 2 notes on what was not checked" in text
    )
    assert [r["kind"] for r in page.rows] == [
        "servicenow_not_checked",
        "windows_not_checked",
    ]
    assert all("info" in r["class"] for r in page.rows)
    assert (
        "The robot is in order: certificates valid; Windows stores not checked" in text
    )
