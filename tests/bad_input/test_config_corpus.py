"""Broken settings and tagging plans (tests/data/bad/roi_toml, tests/data/bad/tagging_plan) through the CLI:
each stops with exit code 3 and one line naming what is wrong, before any outside call, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_corpus import CORPUS, cases
from typer.testing import CliRunner

from connectors.errors import EXIT_CONFIG
from flows.cli import app
from models.tagging_plan import DEFAULT_PLAN_PATH

TOML_CASES = cases("roi_toml/cases.toml")
PLAN_CASES = cases("tagging_plan/cases.toml")
UTM_BUILD = ["utm", "build", "https://www.exemple.fr/", "--source", "google", "--medium", "cpc"]


@pytest.fixture
def workdir(clean_settings_env, tmp_path: Path) -> Path:
    """An empty working folder (no roi.toml) and no settings in the environment."""
    clean_settings_env.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    return tmp_path


def _assert_clean_config_error(result, message: str) -> None:
    assert result.exit_code == EXIT_CONFIG, result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(
        result.exception, SystemExit
    )
    error = " ".join(result.stderr.split())
    assert error.startswith("error:") and message in error, error
    assert result.stdout == ""


def test_the_corpus_has_its_share_of_cases():
    assert len(TOML_CASES) >= 20 and len(PLAN_CASES) >= 20


@pytest.mark.parametrize("case", TOML_CASES, ids=[c["name"] for c in TOML_CASES])
def test_roi_toml_case(case, workdir):
    config = workdir / "roi.toml"
    if "file" in case:
        config.write_bytes((CORPUS / "roi_toml" / case["file"]).read_bytes())
    else:
        config.write_text(case["text"].replace("{tmp}", str(workdir)), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--no-publish", "--config", str(config)])
    _assert_clean_config_error(result, case["message"])


@pytest.mark.parametrize("case", PLAN_CASES, ids=[c["name"] for c in PLAN_CASES])
def test_tagging_plan_case(case, workdir):
    plan = workdir / "plan.yaml"
    if "replace" in case:
        old, new = case["replace"]
        shipped = DEFAULT_PLAN_PATH.read_text(encoding="utf-8")
        assert old in shipped, f"the shipped plan no longer has {old!r}: update the case"
        plan.write_text(shipped.replace(old, new, 1), encoding="utf-8")
    elif "file" in case:
        plan.write_bytes((CORPUS / "tagging_plan" / case["file"]).read_bytes())
    elif case.get("plan_is_folder"):
        plan = workdir / "folder"
    (workdir / "roi.toml").write_text(f'tagging_plan = "{plan}"\n', encoding="utf-8")
    result = CliRunner().invoke(app, [*UTM_BUILD, "--campaign", "brand_bougies", "--config", "roi.toml"])
    _assert_clean_config_error(result, case["message"])
