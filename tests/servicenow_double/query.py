"""Encoded queries (sysparm_query) and field rendering of the ServiceNow test double.

Test code only. Supports what docs/servicenow-api.md lists: ``^`` (AND), ``^OR`` (binds to the
condition before it), ``=``, ``!=``, ``IN``, ``NOT IN``, ``STARTSWITH``, ``ENDSWITH``, ``LIKE``,
``NOT LIKE``, ``ISEMPTY``, ``ISNOTEMPTY``, ``ORDERBY``/``ORDERBYDESC`` and one-level dot-walks.
A condition on an unknown field is dropped, as a real instance silently ignores it.
"""

from __future__ import annotations

import re
import typing as t
from collections.abc import Callable
from dataclasses import dataclass

from .schema import CHOICES, DISPLAY_FIELD, INTEGER, PASSWORD, fields_of

Record = dict[str, str]
# Looks up a referenced record: (table, sys_id) -> record or None.
Resolver = Callable[[str, str], "Record | None"]

# Longest first, so "NOT IN" wins over "IN" and "!=" over "=".
OPERATORS = (
    "ISNOTEMPTY",
    "ISEMPTY",
    "NOT IN",
    "NOT LIKE",
    "STARTSWITH",
    "ENDSWITH",
    "LIKE",
    "IN",
    "!=",
    ">=",
    "<=",
    "=",
    ">",
    "<",
)
FIELD = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)?")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str


@dataclass(frozen=True)
class Query:
    groups: list[list[Condition]]  # AND of ORs
    order: list[tuple[str, bool]]  # (field, descending)


def field_kind(table: str, path: str) -> str | None:
    """The type of PATH (a field or a one-level dot-walk) in TABLE; None when unknown."""
    fields = fields_of(table)
    head, _dot, tail = path.partition(".")
    kind = fields.get(head)
    if kind is None or not tail:
        return kind
    if not kind.startswith("reference:"):
        return None
    return fields_of(kind.split(":", 1)[1]).get(tail)


def _condition(text: str, table: str) -> Condition | None:
    match = FIELD.match(text)
    if not match:
        return None
    field, rest = match.group(0), text[match.end() :]
    op = next((o for o in OPERATORS if rest.startswith(o)), None)
    if op is None or field_kind(table, field) is None:
        return None
    return Condition(field, op, rest[len(op) :])


def parse(encoded: str, table: str) -> Query:
    groups: list[list[Condition]] = []
    order: list[tuple[str, bool]] = []
    for index, part in enumerate(encoded.split("^")) if encoded else ():
        is_or = part.startswith("OR") and index > 0 and not part.startswith("ORDERBY")
        text = part[2:] if is_or else part
        if text.startswith("ORDERBYDESC") or text.startswith("ORDERBY"):
            desc = text.startswith("ORDERBYDESC")
            field = text[len("ORDERBYDESC") if desc else len("ORDERBY") :]
            if field_kind(table, field) is not None:
                order.append((field, desc))
            continue
        condition = _condition(text, table)
        if condition is None:
            continue
        if is_or and groups:
            groups[-1].append(condition)
        else:
            groups.append([condition])
    return Query(groups, order)


def value_at(record: Record, table: str, path: str, resolve: Resolver) -> str:
    head, _dot, tail = path.partition(".")
    value = record.get(head, "")
    if not tail:
        return value
    target = fields_of(table)[head].split(":", 1)[1]
    referenced = resolve(target, value) if value else None
    return referenced.get(tail, "") if referenced else ""


def _matches(cond: Condition, actual: str, kind: str) -> bool:
    op, expected = cond.op, cond.value
    if op == "ISEMPTY":
        return actual == ""
    if op == "ISNOTEMPTY":
        return actual != ""
    if op in ("IN", "NOT IN"):
        inside = actual in expected.split(",")
        return inside if op == "IN" else not inside
    if op in ("LIKE", "NOT LIKE"):
        found = expected.lower() in actual.lower()
        return found if op == "LIKE" else not found
    if op == "STARTSWITH":
        return actual.startswith(expected)
    if op == "ENDSWITH":
        return actual.endswith(expected)
    if op == "=":
        return actual == expected
    if op == "!=":
        return actual != expected
    left: t.Any = actual
    right: t.Any = expected
    if kind == INTEGER:
        try:
            left, right = int(actual or 0), int(expected)
        except ValueError:
            return False
    return {
        ">": left > right,
        "<": left < right,
        ">=": left >= right,
        "<=": left <= right,
    }[op]


def select(
    records: list[Record], table: str, query: Query, resolve: Resolver
) -> list[Record]:
    def keep(record: Record) -> bool:
        return all(
            any(
                _matches(
                    c,
                    value_at(record, table, c.field, resolve),
                    field_kind(table, c.field) or "",
                )
                for c in group
            )
            for group in query.groups
        )

    chosen = [r for r in records if keep(r)]
    for field, desc in reversed(query.order):
        numeric = field_kind(table, field) == INTEGER

        def key(record: Record, field: str = field, numeric: bool = numeric) -> t.Any:
            value = value_at(record, table, field, resolve)
            return int(value or 0) if numeric else value

        chosen.sort(key=key, reverse=desc)
    return chosen


def render(
    record: Record,
    table: str,
    *,
    fields: list[str] | None,
    display: str,
    exclude_links: bool,
    base_url: str,
    resolve: Resolver,
) -> dict[str, t.Any]:
    """One record as the Table API shows it: strings, references as link/value, no secrets."""
    names = fields or [f for f, kind in fields_of(table).items() if kind != PASSWORD]
    out: dict[str, t.Any] = {}
    for name in names:
        kind = field_kind(table, name)
        if kind is None or kind == PASSWORD:
            continue
        value = value_at(record, table, name, resolve)
        owner, element = (table, name)
        if "." in name:
            head = name.split(".", 1)[0]
            owner, element = (
                fields_of(table)[head].split(":", 1)[1],
                name.split(".", 1)[1],
            )
        shown = value
        link = None
        if kind.startswith("reference:"):
            target = kind.split(":", 1)[1]
            referenced = resolve(target, value) if value else None
            shown = (
                referenced.get(DISPLAY_FIELD.get(target, "sys_id"), "")
                if referenced
                else ""
            )
            link = f"{base_url}/api/now/table/{target}/{value}" if value else None
        elif (owner, element) in CHOICES:
            shown = CHOICES[(owner, element)].get(value, value)
        if display == "true":
            out[name] = shown
        elif display == "all":
            item = {"display_value": shown, "value": value}
            if link and not exclude_links:
                item["link"] = link
            out[name] = item
        elif link and not exclude_links:
            out[name] = {"link": link, "value": value}
        else:
            out[name] = value
    return out


__all__ = ("Condition", "Query", "field_kind", "parse", "render", "select", "value_at")
