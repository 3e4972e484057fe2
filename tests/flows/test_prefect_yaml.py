"""prefect.yaml: each deployment's entrypoint imports and its parameters validate against the flow."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect.exceptions import ParameterTypeError
from prefect.flows import load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[2]
# What an operator passes at run time on top of the deployment's stored parameters.
RUN_TIME_PARAMETERS = {
    "backfill": {"start": "2026-01-01", "end": "2026-01-31", "streams": ["ga4", "hubspot"]}
}


def _deployments() -> list:
    # Prefect's own model of the file: unknown schedule keys fail here instead of silently at deploy time.
    from prefect.cli.deploy._models import PrefectYamlModel

    document = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return PrefectYamlModel.model_validate(document).deployments


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d.name)
def test_entrypoint_imports_and_parameters_validate(deployment, monkeypatch):
    monkeypatch.chdir(ROOT)
    flow = load_flow_from_entrypoint(deployment.entrypoint)
    assert flow.name == deployment.name
    parameters = {**(deployment.parameters or {}), **RUN_TIME_PARAMETERS.get(deployment.name, {})}
    validated = flow.validate_parameters(parameters)
    assert set(parameters) <= set(validated)
    assert deployment.work_pool.name == "roi-process"
    if deployment.name == "nightly-all":
        # One fan-out at a time: a second scheduled run waits in the queue.
        assert deployment.concurrency_limit.limit == 1
        assert deployment.concurrency_limit.collision_strategy == "ENQUEUE"
    else:
        # Portal runs: a deployment limit would serialise every portal's runs of that deployment; one writer
        # per portal is the flows' own global concurrency slot (flows/concurrency.py).
        assert deployment.concurrency_limit is None
        assert "portal" in flow.parameters.properties


def test_nightly_all_is_scheduled_at_two_in_paris_and_nightly_is_not():
    by_name = {d.name: d for d in _deployments()}
    assert not by_name["nightly"].schedules  # nightly-all starts it, once per portal
    (schedule,) = by_name["nightly-all"].schedules
    assert (schedule.cron, schedule.timezone, schedule.active) == ("0 2 * * *", "Europe/Paris", True)


def test_backfill_rejects_a_bad_date_and_an_unknown_stream(monkeypatch):
    monkeypatch.chdir(ROOT)
    flow = load_flow_from_entrypoint("flows/backfill.py:backfill")
    with pytest.raises(ParameterTypeError, match="end"):
        flow.validate_parameters({"start": "2026-01-01", "end": "2026-13-01"})
    with pytest.raises(ParameterTypeError, match="streams"):
        flow.validate_parameters({"start": "2026-01-01", "end": "2026-01-02", "streams": ["crm"]})
