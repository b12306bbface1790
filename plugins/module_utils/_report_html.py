# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""The fleet audit document as one self-contained HTML page: inline CSS and SVG, no scripts, no links out.

The page reads top down the way people triage: overall status and counts, then the problems (most
severe first, each with what to do), then the expiry timeline, then the robot table. Output depends
only on the document, so it is byte-identical for an unchanged fleet.
"""

from __future__ import annotations

import datetime
import html
import typing as t

from ansible_collections.snowrpa.robot_certs.plugins.module_utils._report import (
    parse_time,
)

_MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_SEVERITY_LABEL = {"error": "Action needed", "warning": "Warning", "info": "Note"}
_STATUS_LABEL = {
    "ok": "valid",
    "expiring": "expiring soon",
    "expired": "expired",
    "missing": "missing",
}
_WINDOWS_LABEL = {
    "checked": "checked",
    "unreachable": "unreachable",
    "skipped": "no Windows host",
    "not_collected": "not checked",
}
_ROLE_LABEL = {"client": "client", "code_signing": "code signing", "ca": "CA"}

# Timeline geometry (SVG user units; the SVG scales to the page width).
_WIDTH = 1200
_LABEL_W = 250
_RIGHT_PAD = 110
_ROW_H = 22
_GROUP_GAP = 8
_TOP = 46
_MAX_SPAN = datetime.timedelta(days=3 * 365)

_CSS = """
:root { --ink:#1d2939; --muted:#5d6b82; --line:#d0d5dd; --bg:#f6f7f9; --card:#fff;
  --error:#b42318; --error-bg:#fef3f2; --warning:#b54708; --warning-bg:#fffaeb;
  --ok:#067647; --ok-bg:#ecfdf3; --info:#175cd3; --info-bg:#eff8ff; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width:1320px; margin:0 auto; padding:28px 32px 48px; }
h1 { font-size:26px; margin:0 0 4px; font-weight:650; }
h2 { font-size:19px; margin:34px 0 12px; font-weight:650; }
.meta { color:var(--muted); margin:0 0 18px; }
.banner { border-radius:10px; padding:14px 18px; font-size:17px; font-weight:600; margin-bottom:18px;
  border:1px solid; }
.banner.error { background:var(--error-bg); color:var(--error); border-color:#fecdca; }
.banner.warning { background:var(--warning-bg); color:var(--warning); border-color:#fedf89; }
.banner.ok { background:var(--ok-bg); color:var(--ok); border-color:#abefc6; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(140px, 1fr)); gap:12px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.card .n { font-size:28px; font-weight:700; line-height:1.1; }
.card .l { color:var(--muted); font-size:13px; }
.card.error .n { color:var(--error); } .card.warning .n { color:var(--warning); }
.card.ok .n { color:var(--ok); } .card.zero .n { color:#98a2b3; }
table { width:100%; border-collapse:collapse; background:var(--card); border:1px solid var(--line);
  border-radius:10px; overflow:hidden; }
th, td { text-align:left; vertical-align:top; padding:9px 12px; border-bottom:1px solid #eaecf0; }
th { background:#f2f4f7; font-size:13px; color:var(--muted); font-weight:600; }
tr:last-child td { border-bottom:none; }
td.sev { white-space:nowrap; width:1%; }
td.robot { white-space:nowrap; font-weight:600; }
.badge { display:inline-block; border-radius:999px; padding:1px 10px; font-size:12.5px; font-weight:600;
  border:1px solid; white-space:nowrap; }
.badge.error { color:var(--error); background:var(--error-bg); border-color:#fecdca; }
.badge.warning { color:var(--warning); background:var(--warning-bg); border-color:#fedf89; }
.badge.info { color:var(--info); background:var(--info-bg); border-color:#b2ddff; }
.badge.ok { color:var(--ok); background:var(--ok-bg); border-color:#abefc6; }
.badge.muted { color:var(--muted); background:#f2f4f7; border-color:var(--line); }
.title { font-weight:600; }
.msg { color:var(--ink); }
.todo { color:var(--muted); }
.none { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px; color:var(--ok); }
.timeline { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:8px 8px 4px; }
.timeline svg { display:block; width:100%; height:auto; }
.legend { color:var(--muted); font-size:13px; margin:8px 4px 4px; }
.legend span { display:inline-block; margin-right:16px; }
.sw { display:inline-block; width:14px; height:10px; border-radius:2px; margin-right:5px; vertical-align:middle; }
.thumb { font-family:ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size:11.5px;
  color:var(--muted); margin-top:2px; }
.thumb span { white-space:nowrap; }
code, .mono { font-family:ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size:12.5px; }
.small { font-size:13px; color:var(--muted); }
footer { margin-top:30px; color:var(--muted); font-size:13px; }
"""

_BAR_FILL = {"ok": "#7cc49a", "expiring": "#f5b544", "expired": "#e0605a"}


def _e(value: t.Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _robots_count(count: int) -> str:
    return _plural(count, "robot")


def _scope(report: dict[str, t.Any]) -> tuple[list[str], list[str]]:
    """What the audit compared, and what it could not: the headline never claims more than was checked."""
    robots = report["robots"]
    windows = [r["windows"]["status"] for r in robots]
    checked = ["certificates valid"]
    if report["servicenow"]["collected"]:
        checked.append("mapped in ServiceNow")
    not_checked = []
    if robots and all(w == "checked" for w in windows):
        checked.append("installed as expected on their Windows hosts")
    elif "checked" in windows:
        checked.append(
            f"installed as expected on the {_plural(windows.count('checked'), 'Windows host')} checked"
        )
    for status, why in (
        ("skipped", "no Windows host"),
        ("not_collected", "no Windows facts given"),
    ):
        if status in windows:
            not_checked.append(
                f"Windows stores not checked for {_robots_count(windows.count(status))} ({why})"
            )
    if not report["servicenow"]["collected"]:
        not_checked.append("ServiceNow not checked")
    return checked, not_checked


def _join(parts: list[str]) -> str:
    if len(parts) <= 2:
        return " and ".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _banner(report: dict[str, t.Any]) -> str:
    summary = report["summary"]
    counts = summary["findings"]
    robots = summary["robots"]
    if counts["error"]:
        verb = "needs" if counts["error"] == 1 else "need"
        text = f"{_plural(counts['error'], 'problem')} {verb} action now"
        if counts["warning"]:
            text += f", and {_plural(counts['warning'], 'warning')}"
        if summary["fleet_blocked"]:
            text += f". A fleet-wide problem affects all {robots} robots"
            if summary["robots_with_problems"]:
                text += (
                    f"; {summary['robots_with_problems']} of them also have their own"
                )
            text += "."
        else:
            text += f"; {summary['robots_with_problems']} of {robots} robots affected."
        kind = "error"
    elif counts["warning"]:
        text = f"No urgent problem; {_plural(counts['warning'], 'warning')} to plan for ({summary['robots_with_problems']} of {robots} robots)."
        kind = "warning"
    else:
        who = "The robot is" if robots == 1 else f"All {robots} robots are"
        checked, not_checked = _scope(report)
        text = f"{who} in order: " + "; ".join([_join(checked), *not_checked]) + "."
        kind = "ok"
    if kind != "ok":
        _checked, not_checked = _scope(report)
        if not_checked:
            text += (
                " Not checked: "
                + "; ".join(not_checked).replace(" not checked", "")
                + "."
            )
    return f'<div class="banner {kind}" role="status">{_e(text)}</div>'


def _cards(report: dict[str, t.Any]) -> str:
    summary = report["summary"]
    counts = summary["findings"]
    items = [
        (summary["robots"], "robots audited", ""),
        (summary["robots_ok"], "robots in order", "ok"),
        (summary["robots_with_problems"], "robots with problems", "error"),
        (counts["error"], "problems needing action", "error"),
        (counts["warning"], "warnings", "warning"),
        (summary["expiring"], f"expiring within {report['warn_days']} days", "warning"),
        (summary["expired"], "expired certificates", "error"),
        (summary["unreachable"], "hosts unreachable", "error"),
    ]
    cells = []
    for number, label, kind in items:
        css = "zero" if kind in ("error", "warning") and not number else kind
        cells.append(
            f'<div class="card {css}"><div class="n">{number}</div><div class="l">{_e(label)}</div></div>'
        )
    return '<div class="cards">' + "".join(cells) + "</div>"


def _problems_heading(report: dict[str, t.Any]) -> str:
    counts = report["summary"]["findings"]
    text = f"Problems ({counts['error'] + counts['warning']}), most severe first"
    if counts["info"]:
        text += f", then {_plural(counts['info'], 'note')} on what was not checked"
    return f'<h2 id="problems">{_e(text)}</h2>'


def _problems(report: dict[str, t.Any]) -> str:
    findings = report["findings"]
    if not findings:
        return '<div class="none">No problems found.</div>'
    rows = []
    for finding in findings:
        robot = finding["robot"] or "All robots"
        what = _ROLE_LABEL.get(finding["certificate"] or "", "")
        robot_cell = _e(robot) + (
            f'<div class="small">{_e(what)}</div>' if what else ""
        )
        rows.append(
            f'<tr class="finding {finding["severity"]}" data-kind="{_e(finding["kind"])}">'
            f'<td class="sev"><span class="badge {finding["severity"]}">{_e(_SEVERITY_LABEL[finding["severity"]])}</span></td>'
            f'<td class="robot">{robot_cell}</td>'
            f'<td><div class="title">{_e(finding["title"])}</div><div class="msg">{_e(finding["message"])}</div></td>'
            f'<td class="todo">{_e(finding["action"])}</td></tr>'
        )
    head = "<tr><th>Severity</th><th>Robot</th><th>Problem</th><th>What to do</th></tr>"
    return f'<table class="problems"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _month_start(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _add_months(moment: datetime.datetime, months: int) -> datetime.datetime:
    index = moment.month - 1 + months
    return moment.replace(year=moment.year + index // 12, month=index % 12 + 1, day=1)


def _timeline_rows(report: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    rows: list[dict[str, t.Any]] = [
        {"group": "Robot CA", "role": "ca", "cert": report["ca"], "first": True}
    ]
    for robot in report["robots"]:
        for index, role in enumerate(("client", "code_signing")):
            rows.append(
                {
                    "group": robot["name"],
                    "role": role,
                    "cert": robot["certificates"][role],
                    "first": index == 0,
                }
            )
    return rows


def _range(
    report: dict[str, t.Any], now: datetime.datetime
) -> tuple[datetime.datetime, datetime.datetime]:
    warn = datetime.timedelta(days=report["warn_days"])
    starts = [now - max(warn, datetime.timedelta(days=30))]
    ends = [now + max(2 * warn, datetime.timedelta(days=90))]
    for robot in report["robots"]:
        for cert in robot["certificates"].values():
            begin, end = (
                parse_time(cert.get("not_before")),
                parse_time(cert.get("not_after")),
            )
            if begin:
                starts.append(begin)
            if end:
                ends.append(end)
                # An expired certificate keeps a little room to its left so its bar is visible.
                starts.append(end - datetime.timedelta(days=30))
    start = max(min(starts), now - _MAX_SPAN)
    end = min(max(ends), now + _MAX_SPAN)
    start = _month_start(start)
    end = _add_months(_month_start(end), 1)
    return start, end


def _ticks(
    start: datetime.datetime, end: datetime.datetime
) -> list[tuple[datetime.datetime, str]]:
    months = (end.year - start.year) * 12 + end.month - start.month
    # About eight labels fit the plot width without touching each other.
    step = 1 if months <= 8 else 2 if months <= 16 else 3 if months <= 28 else 6
    ticks = []
    current = start
    while current <= end:
        if (current.month - 1) % step == 0:
            ticks.append((current, f"{_MONTHS[current.month - 1]} {current.year}"))
        current = _add_months(current, 1)
    return ticks


def _timeline(report: dict[str, t.Any]) -> str:
    now = parse_time(report["now"])
    if now is None:  # pragma: no cover - build_report always writes an ISO date
        raise AssertionError(
            f"Contract violation: report date {report['now']!r} is not ISO 8601"
        )
    start, end = _range(report, now)
    span = (end - start).total_seconds()
    plot_w = _WIDTH - _LABEL_W - _RIGHT_PAD

    def x(moment: datetime.datetime) -> float:
        clipped = min(max(moment, start), end)
        return round(_LABEL_W + (clipped - start).total_seconds() / span * plot_w, 1)

    rows = _timeline_rows(report)
    groups = sum(1 for r in rows if r["first"])
    height = _TOP + len(rows) * _ROW_H + groups * _GROUP_GAP + 12
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="Certificate validity per robot, with today and the {report["warn_days"]}-day warning window" '
        'font-family="-apple-system, Segoe UI, Roboto, Arial, sans-serif" font-size="12">'
    ]
    warn_end = now + datetime.timedelta(days=report["warn_days"])
    parts.append(
        f'<rect x="{x(now)}" y="{_TOP - 8}" width="{max(x(warn_end) - x(now), 1)}" height="{height - _TOP - 4}" fill="#fdf0d5"/>'
        f'<text x="{x(now) + 6}" y="34" fill="#93370d" font-size="11">warning window: {report["warn_days"]} days</text>'
    )
    for moment, label in _ticks(start, end):
        parts.append(
            f'<line x1="{x(moment)}" x2="{x(moment)}" y1="{_TOP - 8}" y2="{height - 12}" stroke="#eaecf0"/>'
            f'<text x="{x(moment)}" y="16" fill="#5d6b82" text-anchor="middle" font-size="11">{label}</text>'
        )

    y = _TOP
    for row in rows:
        if row["first"]:
            if row is not rows[0]:
                parts.append(
                    f'<line x1="8" x2="{_WIDTH - 8}" y1="{y + _GROUP_GAP / 2 - 1}" y2="{y + _GROUP_GAP / 2 - 1}" stroke="#eaecf0"/>'
                )
            y += _GROUP_GAP
            parts.append(
                f'<text x="10" y="{y + 15}" font-weight="600" fill="#1d2939">{_e(row["group"])}</text>'
            )
        parts.append(_timeline_row(row, y, x, start, end))
        y += _ROW_H

    parts.append(
        f'<line x1="{x(now)}" x2="{x(now)}" y1="24" y2="{height - 8}" stroke="#1d2939" stroke-width="2"/>'
        f'<text x="{x(now) - 6}" y="34" text-anchor="end" font-weight="600" fill="#1d2939">today {now.date().isoformat()}</text>'
    )
    parts.append("</svg>")
    legend = (
        '<div class="legend">'
        f'<span><i class="sw" style="background:{_BAR_FILL["ok"]}"></i>valid</span>'
        f'<span><i class="sw" style="background:{_BAR_FILL["expiring"]}"></i>expires within {report["warn_days"]} days</span>'
        f'<span><i class="sw" style="background:{_BAR_FILL["expired"]}"></i>expired</span>'
        '<span><i class="sw" style="background:#fdf0d5"></i>warning window</span>'
        "<span>bars run from issue to expiry; the date at the end of a bar is the expiry date</span>"
        "</div>"
    )
    return '<div class="timeline">' + "".join(parts) + legend + "</div>"


def _timeline_row(
    row: dict[str, t.Any],
    y: float,
    x: t.Callable[[datetime.datetime], float],
    start: datetime.datetime,
    end: datetime.datetime,
) -> str:
    cert = row["cert"]
    label = _ROLE_LABEL[row["role"]]
    text_x = 150 if row["role"] != "ca" else 150
    out = [f'<text x="{text_x}" y="{y + 15}" fill="#5d6b82">{_e(label)}</text>']
    begin, finish = (
        parse_time(cert.get("not_before")),
        parse_time(cert.get("not_after")),
    )
    if cert["status"] == "missing" or not begin or not finish:
        out.append(
            f'<text x="{_LABEL_W + 4}" y="{y + 15}" fill="#b42318" font-style="italic">missing on the controller</text>'
        )
        return "".join(out)
    fill = _BAR_FILL[cert["status"]]
    left, right = x(begin), x(finish)
    tip = f"{row['group']} {label}: valid {begin.date().isoformat()} to {finish.date().isoformat()}"
    out.append(
        f'<rect x="{left}" y="{y + 4}" width="{max(right - left, 2)}" height="{_ROW_H - 8}" rx="3" fill="{fill}">'
        f"<title>{_e(tip)}</title></rect>"
    )
    date = finish.date().isoformat()
    if finish > end:
        out.append(
            f'<text x="{right + 4}" y="{y + 15}" fill="#1d2939">&#8594; {date}</text>'
        )
    elif finish < start:
        out.append(
            f'<text x="{_LABEL_W + 4}" y="{y + 15}" fill="#b42318">&#8592; expired {date}</text>'
        )
    else:
        out.append(f'<text x="{right + 4}" y="{y + 15}" fill="#1d2939">{date}</text>')
    return "".join(out)


def _expiry_cell(cert: dict[str, t.Any]) -> str:
    if cert["status"] == "missing":
        return '<span class="badge error">missing</span>'
    kind = {"ok": "ok", "expiring": "warning", "expired": "error"}[cert["status"]]
    days = cert["days_left"]
    when = f"in {days} days" if days >= 0 else f"{-days} days ago"
    date = (cert.get("not_after") or "")[:10]
    return f'{_e(date)} <span class="badge {kind}">{_e(_STATUS_LABEL[cert["status"]])}</span><div class="small">{_e(when)}</div>'


def _thumb(cert: dict[str, t.Any]) -> str:
    """The thumbprint in blocks of 8 digits that never break inside: a narrow column wraps between blocks."""
    thumbprint = cert.get("thumbprint")
    if not thumbprint:
        return ""
    blocks = " ".join(
        f"<span>{_e(thumbprint[i : i + 8])}</span>"
        for i in range(0, len(thumbprint), 8)
    )
    return (
        f'<div class="thumb" title="Windows thumbprint {_e(thumbprint)}">{blocks}</div>'
    )


def _robots(report: dict[str, t.Any]) -> str:
    rows = []
    for robot in report["robots"]:
        client = robot["certificates"]["client"]
        signing = robot["certificates"]["code_signing"]
        mapping = robot["servicenow_mapping"]
        mapping_badge = {"ok": "ok", "problem": "error"}.get(mapping, "muted")
        windows = robot["windows"]["status"]
        windows_badge = {"checked": "ok", "unreachable": "error"}.get(windows, "muted")
        problems = robot["problems"]
        worst = robot["worst"]
        problem_cell = (
            f'<span class="badge {worst}">{_plural(problems, "problem")}</span>'
            if problems
            else '<span class="badge ok">none</span>'
        )
        rows.append(
            f'<tr><td class="robot">{_e(robot["name"])}</td>'
            f'<td>{_e(robot["snow_user"] or "not set")}<div class="small">{_e(robot["windows_account"] or "no Windows account set")}</div></td>'
            f"<td>{_expiry_cell(client)}{_thumb(client)}</td>"
            f"<td>{_expiry_cell(signing)}{_thumb(signing)}</td>"
            f'<td><span class="badge {mapping_badge}">{_e(mapping)}</span></td>'
            f'<td><span class="badge {windows_badge}">{_e(_WINDOWS_LABEL.get(windows, windows))}</span></td>'
            f"<td>{problem_cell}</td></tr>"
        )
    head = (
        "<tr><th>Robot</th><th>ServiceNow user / Windows account</th><th>Client certificate</th>"
        "<th>Code-signing certificate</th><th>ServiceNow mapping</th><th>Windows</th><th>Problems</th></tr>"
    )
    return f'<table class="robots"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _footer(report: dict[str, t.Any]) -> str:
    ca = report["ca"]
    snow = report["servicenow"]
    snow_text = (
        "collected"
        if snow["collected"]
        else f"not collected ({snow.get('error') or 'unknown reason'})"
    )
    ca_text = f"{ca.get('subject') or 'unreadable'} ({ca.get('path') or 'no path'})"
    return (
        "<footer>"
        f"<div>Robot CA: {_e(ca_text)}, expires {_e((ca.get('not_after') or 'unknown')[:10])}.</div>"
        f"<div>ServiceNow facts: {_e(snow_text)}. Report as of {_e(report['now'])}, schema {report['schema_version']}.</div>"
        "<div>The same findings are in the JSON report next to this page.</div>"
        "</footer>"
    )


def render_html(report: dict[str, t.Any]) -> bytes:
    """The page for REPORT (a document from build_report) as UTF-8 bytes."""
    now = report["now"][:10]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report['title'])}: {_e(now)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(report['title'])}</h1>",
        f'<p class="meta">As of {_e(now)} (UTC) &middot; {_plural(report["summary"]["robots"], "robot")} '
        f"&middot; warning window {report['warn_days']} days</p>",
        _banner(report),
        _cards(report),
        _problems_heading(report),
        _problems(report),
        '<h2 id="timeline">Expiry timeline</h2>',
        _timeline(report),
        '<h2 id="robots">Robots</h2>',
        _robots(report),
        _footer(report),
        "</main></body></html>",
    ]
    return ("\n".join(parts) + "\n").encode("utf-8")


__all__ = ("render_html",)
