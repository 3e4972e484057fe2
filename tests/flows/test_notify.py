"""Issue 12: failures reach someone. [notify] webhook (Slack-compatible JSON) and e-mail, sent by the flows
on a failed run, on data tests blocking publish and on freshness errors; local receivers, real sockets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from receivers import SmtpReceiver, WebhookReceiver
from typer.testing import CliRunner

from connectors.config import load_settings
from connectors.notify import Notification, notify
from flows.cli import EXIT_STEP_FAILED, app


def test_webhook_payload_is_slack_json_retried_on_5xx_and_secrets_never_sent(clean_settings_env):
    with WebhookReceiver(statuses=[503]) as hook:
        settings = load_settings(
            None,
            hubspot_access_token="pat-eu1-99999999-aaaa-bbbb-cccc-dddddddddddd",
            notify={"webhook_url": hook.url},
        )
        problems = notify(
            settings,
            Notification(
                event="failure",
                title="nightly run FAILED",
                details=["HubSpot answered 401 for pat-eu1-99999999-aaaa-bbbb-cccc-dddddddddddd"],
                run_id="nightly-1",
                warehouse="/srv/roi.duckdb",
            ),
        )
        assert problems == [] and hook.attempts == 2  # the 503 was retried
    (payload,) = hook.received
    assert payload["text"] == ":rotating_light: nightly run FAILED"
    assert [b["type"] for b in payload["blocks"]] == ["section", "section", "context"]
    assert payload["blocks"][1]["text"] == {"type": "mrkdwn", "text": "• HubSpot answered 401 for ***"}
    assert "run `nightly-1`" in payload["blocks"][2]["elements"][0]["text"]
    assert "pat-eu1" not in str(payload) and hook.url not in str(payload)


def test_an_event_not_wanted_is_not_sent_and_a_dead_webhook_is_a_problem_not_an_error(clean_settings_env):
    with WebhookReceiver(statuses=[404]) as hook:
        settings = load_settings(None, notify={"webhook_url": hook.url, "on": ["failure"]})
        assert notify(settings, Notification(event="freshness", title="stale")) == []
        assert hook.attempts == 0
        problems = notify(settings, Notification(event="failure", title="failed"))
        assert (
            problems == ["webhook: webhook not delivered (HTTP 404)"] and hook.attempts == 1
        )  # 4xx: no retry


def test_email_notification(clean_settings_env):
    with SmtpReceiver() as smtp:
        settings = load_settings(
            None,
            notify={
                "email_to": ["ops@example.com", "cmo@example.com"],
                "email_from": "roi@example.com",
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "smtp_starttls": False,
            },
        )
        assert (
            notify(settings, Notification(event="tests_blocked", title="data tests failed", run_id="r9"))
            == []
        )
    (message,) = smtp.messages
    assert message["Subject"] == "[roi-pipeline] data tests failed"
    assert smtp.envelopes == [("roi@example.com", ["ops@example.com", "cmo@example.com"])]
    assert "run r9" in message.get_payload()


def test_email_without_smtp_host_is_a_config_problem(clean_settings_env):
    settings = load_settings(None, notify={"email_to": ["ops@example.com"]})
    assert any("smtp_host" in p for p in settings.problems(()))


@pytest.fixture
def small_sandbox(prefect_harness, tmp_path, monkeypatch, clean_settings_env):
    """A 40-contact sandbox and an environment pointing the flows at it, with a webhook receiver."""
    from flows.sandbox_mode import sandbox_env
    from sandbox.server import SandboxServer

    with (
        SandboxServer(contacts=40, seed=5, out_dir=tmp_path / "sb", rate_limits=False) as sb,
        WebhookReceiver() as hook,
    ):
        for name, value in sandbox_env(sb, database=tmp_path / "w.duckdb").items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("NOTIFY__WEBHOOK_URL", hook.url)
        monkeypatch.chdir(tmp_path)
        sb.hook = hook
        yield sb


def test_the_nightly_flow_notifies_blocked_publish_stale_data_and_failure(
    small_sandbox, tmp_path, monkeypatch
):
    from flows.nightly import nightly
    from flows.sandbox_mode import sandbox_today

    hook = small_sandbox.hook
    today = sandbox_today(small_sandbox)
    tests = tmp_path / "my_tests"
    tests.mkdir()
    (tests / "no_contacts_allowed.sql").write_text("select id from raw.hubspot_contacts\n")
    state = nightly(today=today, extra_data_tests=str(tests), return_state=True)
    assert state.is_failed()
    (blocked,) = hook.wait_for(1)
    assert blocked["text"] == ":no_entry: nightly run: data tests failed, ROI NOT published"
    assert "failed data tests: no_contacts_allowed" in blocked["blocks"][1]["text"]["text"]

    # A run that succeeds 20 days after the last GA4 day: GA4 is past its error age (5 days).
    state = nightly(today=today + timedelta(days=20), publish=False, return_state=True)
    assert state.is_completed(), state.message
    stale = hook.wait_for(2)[1]
    assert stale["text"] == ":hourglass: Stale data: 1 source(s) past their freshness limit"
    assert "ga4: last day with GA4 traffic is 2" in stale["blocks"][1]["text"]["text"]

    # A failing run (GA4 refuses the property): the failure, with its cause.
    monkeypatch.setenv("GA4_PROPERTY_ID", "999")
    state = nightly(today=today, publish=False, return_state=True)
    assert state.is_failed()
    failed = hook.wait_for(3)[2]
    assert failed["text"] == ":rotating_light: nightly run FAILED"
    assert "extract ga4 failed (GA4ConfigError" in failed["blocks"][1]["text"]["text"]
    assert len(hook.received) == 3

    # The same freshness error from cron: roi status --check --notify (and the exit code for monitoring).
    monkeypatch.setenv("GA4_PROPERTY_ID", small_sandbox.ga4_property_id)
    monkeypatch.setenv("FRESHNESS__SPEND__ERROR_AFTER", "1d")  # the sheet's last day is weeks before today
    result = CliRunner().invoke(app, ["status", "--check", "--notify"])
    assert result.exit_code == EXIT_STEP_FAILED
    assert "ERROR last run nightly-" in result.stdout and "failed" in result.stdout
    assert "ERROR spend: last day covered by the spend sheet is" in " ".join(result.stdout.split())
    assert hook.wait_for(4)[3]["text"].startswith(":hourglass: Stale data")
