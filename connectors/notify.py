"""Notifications to people: a Slack-compatible webhook and/or e-mail (``[notify]`` in roi.toml).

Sent by the flows when a run fails, when data tests block publishing, and when a source's data is older than
its ``[freshness]`` error threshold; ``roi status --check --notify`` sends the freshness ones from cron.
A notification that cannot be delivered is logged and returned as a problem, never raised: the run's own
outcome must not change because the chat server is down.
"""

from __future__ import annotations

import json
import logging
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage

from connectors.config import Settings, redact

WEBHOOK_ATTEMPTS = 3
WEBHOOK_BACKOFF_SECONDS = 1.0
USER_AGENT = "roi-pipeline-notify/1"
# Slack shows the first 3,000 characters of a section block; longer details are cut with a pointer.
MAX_DETAIL_CHARS = 2_800
EVENT_ICONS = {"failure": ":rotating_light:", "tests_blocked": ":no_entry:", "freshness": ":hourglass:"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notification:
    """What happened (``event`` is one of connectors.config.NOTIFY_EVENTS), in a title and a few lines."""

    event: str
    title: str
    details: list[str] = field(default_factory=list)
    run_id: str | None = None
    warehouse: str | None = None

    @property
    def subject(self) -> str:
        return f"[roi-pipeline] {self.title}"

    def text(self) -> str:
        """The plain-text body (e-mail, and the webhook's fallback ``text``)."""
        lines = [self.title, *self.details]
        where = [f"run {self.run_id}"] if self.run_id else []
        where += [f"warehouse {self.warehouse}"] if self.warehouse else []
        where.append(f"host {socket.gethostname()}")
        lines.append("(" + ", ".join(where) + ")")
        lines.append("Details: `roi status` on that host.")
        return redact("\n".join(lines))

    def webhook_payload(self) -> dict:
        """Slack incoming-webhook JSON: ``text`` for notifications and clients without blocks, then blocks."""
        details = redact("\n".join(f"• {line}" for line in self.details))
        if len(details) > MAX_DETAIL_CHARS:
            details = details[:MAX_DETAIL_CHARS] + "\n… (cut: see `roi status`)"
        context = [f"run `{self.run_id}`"] if self.run_id else []
        context += [f"warehouse `{self.warehouse}`"] if self.warehouse else []
        context.append(f"host `{socket.gethostname()}`")
        icon = EVENT_ICONS.get(self.event, "")
        blocks: list[dict] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": redact(f"{icon} *{self.title}*")}},
        ]
        if details:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": details}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
        return {"text": redact(f"{icon} {self.title}"), "blocks": blocks}


def send_webhook(url: str, payload: dict, *, timeout: float) -> None:
    """POST ``payload`` as JSON; retries connection errors, 429 and 5xx a few times, then raises OSError."""
    body = json.dumps(payload).encode("utf-8")
    last_error = ""
    for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # the URL is http(s): validated
                answer.read()
                return
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
            if exc.code != 429 and exc.code < 500:
                break  # a refused payload or a revoked webhook: another try gets the same answer
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(getattr(exc, "reason", exc))
        if attempt < WEBHOOK_ATTEMPTS:
            time.sleep(WEBHOOK_BACKOFF_SECONDS * attempt)
    raise OSError(f"webhook not delivered ({last_error})")


def send_email(settings: Settings, notification: Notification) -> None:
    options = settings.notify
    message = EmailMessage()
    message["Subject"] = notification.subject
    message["From"] = options.email_from
    message["To"] = ", ".join(options.email_to)
    message.set_content(notification.text())
    host, port = options.smtp_host or "localhost", options.smtp_port
    with smtplib.SMTP(host, port, timeout=options.timeout_seconds) as smtp:
        if options.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if options.smtp_username:
            password = options.smtp_password.get_secret_value() if options.smtp_password else ""
            smtp.login(options.smtp_username, password)
        smtp.send_message(message)


def notify(settings: Settings, notification: Notification) -> list[str]:
    """Send ``notification`` on every configured channel if its event is wanted; the delivery problems."""
    options = settings.notify
    if notification.event not in options.on or not options.configured:
        return []
    problems = []
    if options.webhook_url is not None:
        try:
            send_webhook(
                options.webhook_url.get_secret_value(),
                notification.webhook_payload(),
                timeout=options.timeout_seconds,
            )
        except OSError as exc:
            problems.append(f"webhook: {exc}")
    if options.email_to:
        try:
            send_email(settings, notification)
        except (OSError, smtplib.SMTPException) as exc:
            problems.append(f"e-mail to {', '.join(options.email_to)}: {type(exc).__name__}: {exc}")
    for problem in problems:
        log.warning("Notification %r not delivered: %s", notification.title, redact(problem, settings))
    return [redact(p, settings) for p in problems]
