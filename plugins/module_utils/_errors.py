# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Exception bases, one per domain. Messages are single lines and never carry secrets."""

from __future__ import annotations


def one_line(text: object) -> str:
    """TEXT with every run of whitespace (newlines included) as one space: how errors are reported."""
    return " ".join(str(text).split())


class RobotCertsError(Exception):
    """Base of every error the collection reports to the user."""


class CertificateError(RobotCertsError):
    """X.509, key, PKCS#12 or file problem on the controller."""


class ServiceNowError(RobotCertsError):
    """A ServiceNow instance request failed or answered unexpectedly."""


class WindowsPrepError(RobotCertsError):
    """The controller-side preparation of a Windows module run failed."""


__all__ = (
    "RobotCertsError",
    "CertificateError",
    "ServiceNowError",
    "WindowsPrepError",
    "one_line",
)
