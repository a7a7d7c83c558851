"""Telling people how the gate went: ``notify`` hands a ``GateNotice`` to every notifier."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from cxkpi.errors import GateFailed
from cxkpi.gate.report import GateReport

log = logging.getLogger("cxkpi.gate")


@dataclass(frozen=True)
class GateNotice:
    """What a notifier receives: the verdict of one gate run, ready to send."""

    status: str  # passed | warned | failed
    summary: dict[str, int]
    run_id: str | None
    logical_date: str | None
    lines: tuple[str, ...]  # one per failed or warned check, as in the messages
    evidence_dir: str | None

    @property
    def subject(self) -> str:
        s = self.summary
        return (
            f"cxkpi quality gate {self.status}: run {self.run_id or '?'} "
            f"(logical date {self.logical_date or '?'}): {s.get('failed', 0)} failed, "
            f"{s.get('warned', 0)} warned, {s.get('passed', 0)} passed"
        )

    @property
    def text(self) -> str:
        body = "\n".join(f"- {line}" for line in self.lines) or "- all checks passed"
        where = f"\nEvidence: {self.evidence_dir}" if self.evidence_dir else ""
        return f"{self.subject}\n{body}{where}"


Notifier = Callable[[GateNotice, Any], None]  # (notice, settings or None)


def log_notifier(notice: GateNotice, settings: Any = None) -> None:
    """The default notifier: one log record, at the level the verdict deserves."""
    level = {"failed": logging.ERROR, "warned": logging.WARNING}.get(notice.status, logging.INFO)
    log.log(level, "%s", notice.text)


# Every callable here is called by notify(). Add yours at deploy time, e.g. in the DAG file:
#     gate.NOTIFIERS.append(gate.webhook_notifier(os.environ["CXKPI_GATE_WEBHOOK"]))
NOTIFIERS: list[Notifier] = [log_notifier]


def _notice(report_or_failure: GateReport | GateFailed) -> GateNotice:
    report: GateReport | None
    if isinstance(report_or_failure, GateFailed):
        report = report_or_failure.report
        if report is None:  # a GateFailed raised elsewhere: only its message is known
            return GateNotice(
                "failed",
                {"failed": len(report_or_failure.failures)},
                None,
                None,
                tuple(str(report_or_failure).splitlines()[1:]),
                None,
            )
    else:
        report = report_or_failure
    lines = tuple(r.describe() for r in (*report.errors, *report.warnings))
    return GateNotice(
        report.status,
        report.summary(),
        report.run_id,
        report.logical_date,
        lines,
        str(report.evidence_dir) if report.evidence_dir else None,
    )


def notify(
    report_or_failure: GateReport | GateFailed,
    settings: Any = None,
    notifiers: list[Notifier] | None = None,
) -> GateNotice:
    """Tell every notifier of ``NOTIFIERS`` (or ``notifiers``) how the gate went.

    A notifier that raises is logged and skipped: a broken mail server must not turn a
    good night into a failed one, nor hide the gate's own failure.
    """
    notice = _notice(report_or_failure)
    for notifier in NOTIFIERS if notifiers is None else notifiers:
        try:
            notifier(notice, settings)
        except Exception:
            log.exception("gate notifier %r failed", notifier)
    return notice


def email_notifier(
    smtp_host: str,
    sender: str,
    recipients: list[str],
    statuses: tuple[str, ...] = ("warned", "failed"),
    port: int = 25,
) -> Notifier:
    """A notifier that e-mails the notice (via SMTP, when the status is in ``statuses``).

    Example (not enabled by default)::

        gate.NOTIFIERS.append(gate.email_notifier("smtp.example.com", "cxkpi@example.com",
                                                  ["data-team@example.com"]))
    """

    def send(notice: GateNotice, settings: Any = None) -> None:
        if notice.status not in statuses:
            return
        import smtplib
        from email.message import EmailMessage

        message = EmailMessage()
        message["Subject"], message["From"] = notice.subject, sender
        message["To"] = ", ".join(recipients)
        message.set_content(notice.text)
        with smtplib.SMTP(smtp_host, port, timeout=30) as smtp:
            smtp.send_message(message)

    return send


def webhook_notifier(
    url: str, statuses: tuple[str, ...] = ("warned", "failed"), timeout_s: float = 10.0
) -> Notifier:
    """A notifier that POSTs the notice as JSON (Slack/Teams-style ``{"text": ...}`` plus
    the structured fields) when the status is in ``statuses``.

    Example (not enabled by default)::

        gate.NOTIFIERS.append(gate.webhook_notifier(os.environ["CXKPI_GATE_WEBHOOK"]))
    """

    def post(notice: GateNotice, settings: Any = None) -> None:
        if notice.status not in statuses:
            return
        import urllib.request

        body = json.dumps({"text": notice.text, **asdict(notice)}).encode("utf-8")
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()

    return post
