"""Benchmark: a full model build (staging -> intermediate -> attribution -> marts -> data tests) at scale.

Raw tables are synthesised in SQL (deterministic: values derive from hash(row number)), shaped like the
sandbox: contacts with UTM first URLs or HubSpot sources, ~30 % with a deal (half of them won, half with one
line item; 5 % wholesale orders of 500-250,000, 10 % in USD), ~3 GA4 sessions per contact, daily GA4 traffic
with Google Ads cost, a monthly spend sheet. Each size runs in a fresh process so its peak RSS is its own.

.venv/bin/python bench/bench_models.py                  # 100,000 and 1,000,000 contacts .venv/bin/python
bench/bench_models.py --contacts 20000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_SIZES = (100_000, 1_000_000)
AS_OF = "2026-10-31"
# USD deals convert at the configured rate; deals without a line item get the pipeline's margin rate.
BUILD_PARAMS = {"as_of": AS_OF, "fx_rates": {"USD": "0.92"}, "margin_rates": {"default": "0.5"}}

# (source, medium, campaign, hubspot source) as found in first-page URLs; some messy on purpose.
UTM_COMBOS = [
    ("google", "cpc", "brand_bougies", "PAID_SEARCH"),
    ("Google", "CPC", "generic_bougies", "PAID_SEARCH"),
    ("linkedin", "paid_social", "b2b_boutiques", "PAID_SOCIAL"),
    ("fb", "paid-social", "noel_cadeaux", "PAID_SOCIAL"),
    ("newsletter", "email", "vente_hiver", "EMAIL_MARKETING"),
    ("Newsletter", "e-mail", "Vente%20Hiver", "EMAIL_MARKETING"),
    ("instagram", "social", "", "SOCIAL_MEDIA"),
    ("partenaire_x", "affiliate", "partenariat_printemps", "OTHER_CAMPAIGNS"),
]
NO_UTM_SOURCES = ["ORGANIC_SEARCH", "DIRECT_TRAFFIC", "REFERRALS", "OFFLINE"]

SYNTHESIS_SQL = """
create or replace temp table bench_utms as
select * from (values {utm_values}) as t(k, source, medium, campaign, hubspot_source);

insert into raw.hubspot_contacts by name
with ids as (select range as i from range({n}))
select
    1000 + i as id,
    'c' || i || '@exemple.fr' as email,
    timestamptz '2025-05-01 00:00:00+00' + to_seconds((hash(i, 1) % 47000000)::bigint) as createdate,
    createdate - to_seconds((hash(i, 2) % 7200)::bigint) as hs_analytics_first_timestamp,
    createdate as hs_lifecyclestage_lead_date,
    case when hash(i, 3) % 3 = 0 then createdate + interval 5 day end
        as hs_lifecyclestage_marketingqualifiedlead_date,
    case when hash(i, 4) % 2 = 0
        then 'https://www.bougies-lumiere.fr/?utm_source=' || u.source || '&utm_medium=' || u.medium
             || case when u.campaign <> '' then '&utm_campaign=' || u.campaign else '' end
        else 'https://www.bougies-lumiere.fr/'
    end as hs_analytics_first_url,
    case when hash(i, 4) % 2 = 0 then u.hubspot_source
         else ({no_utm_sources})[1 + (hash(i, 5) % {n_no_utm})::int] end as hs_analytics_source,
    case when hash(i, 4) % 2 = 0 then u.campaign else 'bougie artisanale' end as hs_analytics_source_data_1,
    'google' as hs_analytics_source_data_2,
    case when hash(i, 6) % 4 = 0 then 'DIRECT_TRAFFIC' end as hs_latest_source,
    case when hash(i, 6) % 4 = 0 then createdate + interval 12 day end as hs_latest_source_timestamp,
    case when hash(i, 7) % 20 = 0 then 'salon_maison_objet'
         when hash(i, 7) % 20 = 1 then 'bouche_a_oreille' end as how_did_you_hear_about_us,
    false as archived,
    'bench' as _run_id
from ids
join bench_utms as u on u.k = hash(i, 8) % {n_utms};

insert into raw.hubspot_deals by name
select
    5000000 + id as id,
    -- a real portal's money: 1 deal in 20 a wholesale order of 500-250,000 (the long tail), 1 in 10 in USD
    case when hash(id, 14) % 20 = 0 then (500 + hash(id, 15) % 249500)
         else (10 + hash(id, 11) % 400) end::decimal(18, 2) as amount,
    case when hash(id, 16) % 10 = 0 then 'USD' else 'EUR' end as deal_currency_code,
    case when deal_currency_code = 'USD' then round(amount * 0.92, 2) else amount end
        as amount_in_home_currency,
    case hash(id, 12) % 4 when 0 then 'closedwon' when 1 then 'closedwon' when 2 then 'closedlost'
        else 'qualifiedtobuy' end as dealstage,
    'default' as pipeline,
    createdate + interval 3 day as createdate,
    case when dealstage in ('closedwon', 'closedlost') then createdate + interval 20 day end as closedate,
    dealstage = 'closedwon' as hs_is_closed_won,
    dealstage in ('closedwon', 'closedlost') as hs_is_closed,
    false as archived,
    'bench' as _run_id
from raw.hubspot_contacts
where hash(id, 10) % 10 < 3;

insert into raw.hubspot_contact_deals by name
select id - 5000000 as contact_id, id as deal_id, 3 as association_type_id, 'bench' as _run_id
from raw.hubspot_deals;

insert into raw.hubspot_line_items by name
select id + 9000000000 as id, 'Bougie classique' as name, 'BOUGIE-CLASSIQUE' as hs_sku, 8 as price,
    amount / 8 as quantity, amount, 4 as hs_cost_of_goods_sold, 'EUR' as hs_line_item_currency_code,
    false as archived, 'bench' as _run_id
from raw.hubspot_deals where hash(id, 13) % 2 = 0;

insert into raw.hubspot_deal_line_items by name
select id - 9000000000 as deal_id, id as line_item_id, 19 as association_type_id, 'bench' as _run_id
from raw.hubspot_line_items;

insert into raw.hubspot_deal_pipelines by name
select 'default' as pipeline_id, 'Vente en ligne' as label, 0 as display_order, false as archived,
    'bench' as _run_id;

insert into raw.hubspot_deal_stages by name
select * from (values
    ('appointmentscheduled', 0.2, false), ('qualifiedtobuy', 0.4, false),
    ('presentationscheduled', 0.6, false),
    ('decisionmakerboughtin', 0.8, false), ('closedwon', 1.0, true), ('closedlost', 0.0, true)
) as s(stage_id, probability, is_closed)
cross join (select 'default' as pipeline_id, false as archived, 'bench' as _run_id);

insert into raw.ga4_contact_sessions by name
with sessions as (
    select c.id, s.range as k,
        (c.hs_analytics_first_timestamp + to_days((hash(c.id, 20 + s.range) % 60)::int))::date as date,
        u.source, u.medium, case when u.campaign = '' then '(not set)' else u.campaign end as campaign
    from raw.hubspot_contacts as c
    cross join range(3) as s
    join bench_utms as u on u.k = hash(c.id, 30 + s.range) % {n_utms}
)
select '123456789' as property_id, date, id::varchar as contact_id, source as session_source,
    medium as session_medium, campaign as session_campaign_name, count(*) as sessions, 0 as key_events,
    'bench' as _run_id
from sessions
group by all;

insert into raw.ga4_traffic_daily by name
select property_id, date, session_source, session_medium, session_campaign_name,
    '(not set)' as session_manual_term, '(not set)' as session_manual_ad_content,
    sum(s.contact_sessions) * 5 as sessions, sum(s.contact_sessions) * 4 as total_users,
    'EUR' as currency_code, 'bench' as _run_id
from (select *, sessions as contact_sessions from raw.ga4_contact_sessions) as s
group by property_id, date, session_source, session_medium, session_campaign_name;

insert into raw.ga4_ad_cost_daily by name
select property_id, date, session_source, session_medium, session_campaign_name,
    (sum(sessions) * 0.45)::decimal(18, 2) as advertiser_ad_cost, 'EUR' as currency_code, 'bench' as _run_id
from raw.ga4_traffic_daily
where lower(session_medium) = 'cpc'
group by all;

insert into raw.ga4_report_days by name
select distinct property_id, report, date, 'bench' as _run_id
from raw.ga4_traffic_daily
cross join (values ('traffic_daily'), ('ad_cost_daily'), ('contact_sessions')) as r(report);

insert into raw.marketing_spend by name
select 'spend.csv' as file_name, (row_number() over ())::integer + 1 as line, month as period_start,
    (month + interval 1 month - interval 1 day)::date as period_end, u.source, u.medium, u.campaign,
    ({n} / 10.0 * (1 + u.k))::decimal(18, 2) as amount, 'EUR' as currency, 'bench' as _run_id
from range(date '2025-05-01', date '2026-11-01', interval 1 month) as m(month)
cross join bench_utms as u
where u.campaign <> '';
"""


def synthesise(db_path: Path, contacts: int) -> dict[str, int]:
    from connectors.warehouse import ensure_schema

    con = duckdb.connect(str(db_path))
    try:
        ensure_schema(con)
        utm_values = ", ".join(
            f"({k}, '{s}', '{m}', '{c}', '{h}')" for k, (s, m, c, h) in enumerate(UTM_COMBOS)
        )
        sql = SYNTHESIS_SQL.format(
            n=contacts,
            utm_values=utm_values,
            n_utms=len(UTM_COMBOS),
            no_utm_sources="[" + ", ".join(f"'{s}'" for s in NO_UTM_SOURCES) + "]",
            n_no_utm=len(NO_UTM_SOURCES),
        )
        for statement in sql.split(";\n"):
            if statement.strip():
                try:
                    con.execute(statement).fetchall()
                except duckdb.Error as exc:
                    raise RuntimeError(f"{exc}\nin:\n{statement[:300]}") from exc
        counts = {}
        for table in ("hubspot_contacts", "hubspot_deals", "ga4_contact_sessions", "ga4_traffic_daily"):
            counts[table] = con.execute(f"select count(*) from raw.{table}").fetchall()[0][0]
        return counts
    finally:
        con.close()


def run_one(contacts: int) -> dict:
    """Synthesise + build in this process; returns timings and peak RSS."""
    from models.runner import build

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        counts = synthesise(db, contacts)
        synth_seconds = time.perf_counter() - t0
        rss_before_build_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cpu_before = time.process_time()  # all threads of this process (DuckDB runs its own)
        result = build(db, params=BUILD_PARAMS)
        build_cpu_seconds = time.process_time() - cpu_before
        slowest = sorted(result.models, key=lambda m: -m.seconds)[:6]
        return {
            "contacts": contacts,
            "raw_rows": counts,
            "synthesis_seconds": round(synth_seconds, 1),
            "build_seconds": round(result.seconds, 1),
            "build_cpu_seconds": round(build_cpu_seconds, 1),
            "models_seconds": round(sum(m.seconds for m in result.models), 1),
            "data_tests_seconds": round(sum(t.seconds for t in result.tests), 1),
            "data_tests_passed": f"{sum(t.passed for t in result.tests)}/{len(result.tests)}",
            "slowest_models": {m.name: round(m.seconds, 1) for m in slowest},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "peak_rss_before_build_mb": round(rss_before_build_mb),
            "db_size_mb": round(db.stat().st_size / 2**20),
            "failed_tests": [t.describe() for t in result.failed_tests],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, action="append", help="size(s) to run (default 100k and 1M)")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.contacts or list(DEFAULT_SIZES)
    if args.in_process:
        print(json.dumps(run_one(sizes[0])))
        return
    for size in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--in-process", "--contacts", str(size)],
            capture_output=True,
            text=True,
            check=True,
        )
        print(json.dumps(json.loads(out.stdout.strip().splitlines()[-1]), indent=2))


if __name__ == "__main__":
    main()
