"""`roi check`: everything a first run needs, checked in a few seconds, one line per check with its fix.

Like `dbt debug`: the settings and files, the HubSpot token and its scopes (for extract and for publish),
the portal's company currency against [models] home_currency, the GA4 property (reachable, the contact
custom dimension registered, which cost metrics it serves), the spend sheet (parsed, its rejects previewed)
and the warehouse (writable, not locked). It reads; it never writes to an API or to the warehouse.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from connectors.config import ConfigError, Settings, redact
from flows.locking import lock_path_for, read_lock_holder

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"
# What the pipeline calls, per object type it reads or publishes (HubSpot private-app scope names).
EXTRACT_SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.deals.read",
    "crm.objects.line_items.read",
    "crm.schemas.contacts.read",
    "crm.schemas.deals.read",
)
REJECTS_PREVIEWED = 3


@dataclass
class Check:
    name: str
    level: str  # ok | warn | FAIL | skip
    detail: str
    fix: str | None = None

    @property
    def failed(self) -> bool:
        return self.level == FAIL


def publish_scopes(settings: Settings) -> tuple[str, ...]:
    types = settings.publish.object_types
    return tuple(f"crm.objects.{t}.write" for t in types) + tuple(f"crm.schemas.{t}.write" for t in types)


def _guard(name: str, check: Callable[[], list[Check]]) -> list[Check]:
    """A check that raised is a failed check, with the cause on its line (never a traceback)."""
    try:
        return check()
    except Exception as exc:  # the whole point is to report anything that goes wrong, per check
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [Check(name, FAIL, redact(f"{type(exc).__name__}: {text}"), getattr(exc, "fix", None))]


def check_settings(settings: Settings, source: str, *, extra_data_tests: Path | None = None) -> list[Check]:
    from flows.settings import validate_settings

    try:
        validate_settings(settings, ("hubspot", "ga4"), extra_data_tests=extra_data_tests)
    except ConfigError as exc:
        lines = [line.strip(" -") for line in str(exc).splitlines() if line.strip()]
        if len(lines) > 1:
            lines = lines[1:]  # the "Settings are incomplete:" title
        return [Check("settings", FAIL, line) for line in lines]
    return [Check("settings", OK, f"{source}: every key known, every value valid, files present")]


def check_hubspot(settings: Settings) -> list[Check]:
    """The token's scopes (private-app token info) and one read, through the official client."""
    if not settings.hubspot_token:
        return [Check("hubspot", SKIP, "no token configured", "set HUBSPOT_ACCESS_TOKEN")]
    from hubspot import HubSpot

    client = HubSpot(access_token=settings.hubspot_token)
    answer = client.api_request(
        {
            "method": "POST",
            "path": TOKEN_INFO_PATH,
            "body": {"tokenKey": settings.hubspot_token},
            "base_url": settings.hubspot_base_url,
        }
    )
    if answer.status_code in (400, 401, 404):
        return [
            Check(
                "hubspot token",
                FAIL,
                f"HubSpot does not know this token ({answer.status_code})",
                "copy the private app's access token again (Settings > Integrations > Private apps)",
            )
        ]
    answer.raise_for_status()
    info = answer.json()
    scopes = set(info.get("scopes") or [])
    found = [Check("hubspot token", OK, f"portal {info.get('hubId', '?')}, app {info.get('appId', '?')}")]
    missing_read = [s for s in EXTRACT_SCOPES if s not in scopes]
    found.append(
        Check(
            "hubspot extract", FAIL, f"missing scope(s) {', '.join(missing_read)}", _scope_fix(missing_read)
        )
        if missing_read
        else Check(
            "hubspot extract", OK, "the token can read contacts, deals, line items and their properties"
        )
    )
    missing_write = [s for s in publish_scopes(settings) if s not in scopes]
    if missing_write and settings.publish.enabled:
        found.append(
            Check(
                "hubspot publish",
                FAIL,
                f"missing scope(s) {', '.join(missing_write)}: publishing ROI would be refused (403)",
                _scope_fix(missing_write) + " (or [publish] enabled = false)",
            )
        )
    elif missing_write:
        found.append(Check("hubspot publish", SKIP, "publishing is off ([publish] enabled = false)"))
    else:
        found.append(Check("hubspot publish", OK, "the token can write the ROI properties"))
    if not missing_read:
        # One real read, the cheapest the extract makes: proves the base URL and the rate limiter's tier.
        from connectors.hubspot import make_client

        client = make_client(settings)
        client.crm.pipelines.pipelines_api.get_all(object_type="deals")
        found.append(_currency_check(settings, client))
    return found


def _currency_check(settings: Settings, client: object) -> Check:
    """The portal's company currency against [models] home_currency: a deal without a currency code, and
    HubSpot's own amount_in_home_currency, are in the company currency; reporting in another one needs its
    rate."""
    from connectors.hubspot.reference import account_details
    from models.fx_rates import configured_currencies

    try:
        response = account_details(client, _preload_content=False)
    except Exception as exc:  # the SDK's ApiException: a token that may not read the account details
        if getattr(exc, "status", None) not in (403, 404):
            raise
        return Check(
            "hubspot currency",
            WARN,
            f"HubSpot refused the account details ({exc.status}): the company currency is unknown, so deals "
            f"without a currency code will be taken in {settings.models.home_currency}",
            "check that home_currency is the portal's company currency (Settings > Account defaults)",
        )
    company = str(json.loads(response.data or b"{}").get("companyCurrency") or "").upper()
    home = settings.models.home_currency
    models = settings.models
    if not company or company == home:
        return Check("hubspot currency", OK, f"company currency {company or '?'} = [models] home_currency")
    if company in configured_currencies(models.fx_rates, models.fx_rates_file, home):
        return Check(
            "hubspot currency",
            OK,
            f"company currency {company}, reported in {home}: converted at your {company} rate",
        )
    return Check(
        "hubspot currency",
        FAIL,
        f"the portal's company currency is {company} but [models] home_currency is {home}, and {company} has "
        "no rate: deals without a currency code would be rejected",
        f'set home_currency = "{company}", or add {company} = "<{home} for 1 {company}>" under '
        "[models.fx_rates] in roi.toml",
    )


def _scope_fix(missing: list[str]) -> str:
    return (
        f"add {', '.join(missing)} to the private app (Settings > Integrations > Private apps > Scopes); "
        "the token stays the same"
    )


def check_ga4(settings: Settings) -> list[Check]:
    if not settings.ga4_property_id:
        return [Check("ga4", SKIP, "no property configured", "set GA4_PROPERTY_ID")]
    from connectors.ga4 import ReportCaller, check_cost_availability, make_client, property_resource

    client = make_client(settings.ga4_api_endpoint, settings.google_application_credentials)
    prop = property_resource(settings.ga4_property_id)
    metadata = client.get_metadata(name=f"{prop}/metadata")
    dimensions = {d.api_name for d in metadata.dimensions}
    found = [
        Check(
            "ga4 property",
            OK,
            f"{prop} answers ({len(dimensions)} dimensions, {len(metadata.metrics)} metrics)",
        )
    ]
    wanted = settings.ga4.contact_dimension
    if wanted in dimensions:
        found.append(Check("ga4 contact dimension", OK, f"{wanted} is registered"))
    else:
        custom = sorted(d for d in dimensions if d.startswith(("customUser:", "customEvent:")))
        found.append(
            Check(
                "ga4 contact dimension",
                FAIL,
                f"{wanted} is not registered on {prop}"
                + (f" (custom dimensions: {', '.join(custom)})" if custom else " (no custom dimension)"),
                "in GA4 Admin > Custom definitions, create a user-scoped dimension for the user property "
                "carrying the CRM contact id, or set [ga4] contact_dimension to its API name",
            )
        )
    # The extract's own decision (connectors.ga4): checkCompatibility on the cost report's dimensions.
    cost = check_cost_availability(ReportCaller(client), settings.ga4_property_id)
    found.append(
        Check("ga4 cost", OK, f"the property serves {', '.join(cost.metrics)}")
        if cost.available
        else Check(
            "ga4 cost",
            WARN,
            f"no ad cost from GA4: {cost.reason}",
            "link Google Ads or import cost data in GA4, or keep every cost in the spend sheet",
        )
    )
    return found


def check_spend(settings: Settings) -> list[Check]:
    if settings.spend_file is None:
        return [Check("spend sheet", SKIP, "no spend_file: cost comes from GA4 only", "set ROI_SPEND_FILE")]
    from connectors.spend import KNOWN_CURRENCIES, parse_spend_rows, read_sheet

    path = Path(settings.spend_file)
    sheet = read_sheet(path, settings.spend.sheet)
    known = KNOWN_CURRENCIES | {c.upper() for c in settings.models.fx_rates}
    rows, rejects, _ = parse_spend_rows(sheet.records, path.name, known)
    found = [
        Check(
            "spend sheet",
            OK if not rejects else WARN,
            f"{path.name}: {len(rows):,} rows read"
            + (f", {len(rejects):,} would be rejected (kept aside in ops.rejects)" if rejects else ""),
            "fix the lines below in the sheet (the run goes on without them)" if rejects else None,
        )
    ]
    found += [Check("  rejected", WARN, f"line {r.line}: {r.reason}") for r in rejects[:REJECTS_PREVIEWED]]
    if len(rejects) > REJECTS_PREVIEWED:
        found.append(Check("  rejected", WARN, f"... and {len(rejects) - REJECTS_PREVIEWED} more"))
    return found


def check_warehouse(settings: Settings) -> list[Check]:
    db_path = Path(settings.database)
    folder = db_path.parent if str(db_path.parent) else Path(".")
    if not folder.is_dir():
        return [
            Check("warehouse", FAIL, f"folder {folder} does not exist", "create it or change ROI_DATABASE")
        ]
    if not os.access(folder, os.W_OK) or (db_path.exists() and not os.access(db_path, os.W_OK)):
        return [Check("warehouse", FAIL, f"{db_path} is not writable by this user", "fix its permissions")]
    lock = lock_path_for(db_path)
    if lock.exists():
        with open(lock) as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = read_lock_holder(db_path)
                return [
                    Check(
                        "warehouse",
                        WARN,
                        f"{db_path} is being written now by run {holder.get('run_id', '?')} "
                        f"(pid {holder.get('pid', '?')})",
                        "a run started now would wait for it (--lock-wait) or stop with exit 5",
                    )
                ]
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    if not db_path.exists():
        return [Check("warehouse", OK, f"{db_path} will be created by the first run (folder writable)")]
    import duckdb

    try:
        con = duckdb.connect(str(db_path), read_only=True)
    except duckdb.Error as exc:
        text = str(exc).splitlines()[0]
        if "lock" in text.lower():
            return [Check("warehouse", WARN, f"{db_path} is open in another program ({text})", "close it")]
        return [Check("warehouse", FAIL, f"{db_path} is not a DuckDB file ({text})", "fix ROI_DATABASE")]
    con.close()
    return [Check("warehouse", OK, f"{db_path}: writable, not locked")]


def run_checks(settings: Settings, source: str, *, extra_data_tests: Path | None = None) -> list[Check]:
    found = check_settings(settings, source, extra_data_tests=extra_data_tests)
    found += _guard("hubspot", lambda: check_hubspot(settings))
    found += _guard("ga4", lambda: check_ga4(settings))
    found += _guard("spend sheet", lambda: check_spend(settings))
    found += _guard("warehouse", lambda: check_warehouse(settings))
    return found


def render(checks: list[Check]) -> object:
    """One line per check (level, name, what was found), the fix under it; wraps within 80 columns."""
    from rich.table import Table
    from rich.text import Text

    styles = {OK: "green", WARN: "yellow", FAIL: "bold red", SKIP: "dim"}
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, width=4)
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for check in checks:
        detail = Text(check.detail)
        if check.fix:
            detail.append("\nFix: " + check.fix, style="italic")
        grid.add_row(Text(check.level, style=styles.get(check.level, "")), Text(check.name), detail)
    return grid
