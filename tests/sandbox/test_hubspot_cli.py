"""`roi sandbox serve` refuses bad options before it generates anything."""

from __future__ import annotations

from typer.testing import CliRunner

from flows.cli import app


def test_serve_refuses_a_bad_fault_spec_and_an_unknown_tier():
    runner = CliRunner()
    bad_faults = runner.invoke(app, ["sandbox", "serve", "--port", "0", "--faults", "error_rate=often"])
    assert bad_faults.exit_code == 2
    assert "error_rate=often" in bad_faults.output
    bad_tier = runner.invoke(app, ["sandbox", "serve", "--port", "0", "--tier", "platinum"])
    assert bad_tier.exit_code == 2
    assert "platinum" in bad_tier.output
