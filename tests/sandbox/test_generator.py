"""The deterministic data generator: determinism, realism, and ground truth that agrees with the data."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest

from sandbox.dataset import Dataset
from sandbox.generator import CHANNEL_IDS, DATA_SET_NOW, RATE_TO_EUR_PCT, TOUCH_KINDS, generate

CONTACTS = 4000
SEED = 42


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(CONTACTS, SEED)


@pytest.fixture(scope="module")
def written(dataset: Dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sandbox_out")
    dataset.write_spend_csv(out / "spend.csv")
    dataset.write_ground_truth(out / "ground_truth.json")
    return out


def fingerprint(ds: Dataset) -> str:
    """A digest of everything the APIs serve and the files hold."""
    h = hashlib.sha256()
    for object_type in ("contacts", "deals", "line_items"):
        for archived in (False, True):
            for r in ds.crm.iter_records(object_type, archived=archived):
                h.update(json.dumps([r.id, r.properties, str(r.created_at)], sort_keys=True).encode())
                for to in ("contacts", "deals", "line_items"):
                    h.update(repr(ds.crm.associations(object_type, r.id, to)).encode())
    for name, column in sorted(ds.ga4.metrics.items()):
        h.update(name.encode() + column.tobytes())
    h.update(ds.ga4.day.tobytes() + ds.ga4.contact.tobytes())
    h.update(json.dumps([ds.spend_rows, ds.ground_truth], default=str, sort_keys=True).encode())
    return h.hexdigest()


def test_same_seed_and_size_give_identical_data_other_seeds_differ(dataset: Dataset) -> None:
    small = fingerprint(generate(600, 3))
    assert fingerprint(generate(600, 3)) == small
    assert fingerprint(generate(600, 4)) != small
    assert fingerprint(generate(601, 3)) != small
    assert dataset.now == DATA_SET_NOW == generate(50, 99).now, "'today' never comes from the clock"


def test_channel_mix_and_messy_utms_look_like_real_traffic(dataset: Dataset) -> None:
    channels = Counter(dataset.first_touch_channel_by_contact.values())
    total = sum(channels.values())
    expected = Counter()
    for k in TOUCH_KINDS:
        expected[CHANNEL_IDS.index(k.channel)] += k.weight_first
    weight_sum = sum(expected.values())
    for code, weight in expected.items():
        share = channels[code] / total
        assert abs(share - weight / weight_sum) < 0.025, (CHANNEL_IDS[code], share)
    contacts = list(dataset.crm.iter_records("contacts"))
    urls = [c.properties.get("hs_analytics_first_url") or "" for c in contacts]
    queries = [dict(parse_qsl(urlsplit(u).query, keep_blank_values=True)) for u in urls]
    raw = "\n".join(urls)
    for spelling in ("utm_source=fb", "utm_source=FB", "utm_source=m.facebook.com", "utm_source=lnkd.in",
                     "utm_source=LinkedIn", "utm_source=news%20letter", "utm_source=newsletter%20",
                     "utm_source=%20google%20", "utm_medium=CPC", "utm_medium=ppc", "utm_medium=paid-social",
                     "utm_medium=Paid%20Social", "utm_medium=e-mail", "utm_medium=mail",
                     "utm_campaign=Vente%20Hiver", "utm_campaign=vente+hiver", "utm_campaign=NOEL_CADEAUX",
                     "utm_source=partenaire_x&utm_medium=affiliate"):  # fmt: skip
        assert spelling in raw, spelling
    assert sum(q.get("utm_source") == "google" for q in queries) > 5 * sum(
        q.get("utm_source") == "Google" for q in queries
    )
    sources = Counter(c.properties["hs_analytics_source"] for c in contacts)
    assert set(sources) == {"ORGANIC_SEARCH", "PAID_SEARCH", "PAID_SOCIAL", "SOCIAL_MEDIA", "EMAIL_MARKETING",
                            "REFERRALS", "DIRECT_TRAFFIC", "OFFLINE", "OTHER_CAMPAIGNS"}  # fmt: skip
    offline = [c for c in contacts if c.properties["hs_analytics_source"] == "OFFLINE"]
    assert all("hs_analytics_first_url" not in c.properties for c in offline)
    answers = Counter(c.properties.get("how_did_you_hear_about_us") for c in offline)
    assert {"salon_maison_objet", "salon_bijorhca", "bouche_a_oreille", "recommandation_client", None} <= set(
        answers
    )
    # Values are strings the way HubSpot returns them.
    sample = contacts[0].properties
    assert sample["createdate"].endswith("Z") and len(sample["createdate"]) == 24
    assert dt.datetime.fromisoformat(sample["createdate"]) <= DATA_SET_NOW


def test_deals_line_items_merges_and_archives(dataset: Dataset) -> None:
    crm = dataset.crm
    deals = list(crm.iter_records("deals")) + list(crm.iter_records("deals", archived=True))
    assert deals and any(d.archived for d in deals)
    without_items = 0
    currencies = Counter()
    without_amount, refunds, wholesale_eur = [], [], []
    for deal in deals:
        p = deal.properties
        currencies[p["deal_currency_code"]] += 1
        if "amount" not in p:  # a won deal whose amount was never filled in
            assert "amount_in_home_currency" not in p and p["hs_is_closed_won"] == "true"
            without_amount.append(deal.id)
            continue
        if Decimal(p["amount"]) < 0:  # a refund booked as a deal
            assert p["hs_is_closed_won"] == "true" and not crm.associations("deals", deal.id, "line_items")
            refunds.append(deal.id)
        elif p["pipeline"] == "wholesale":
            wholesale_eur.append(Decimal(p["amount_in_home_currency"]))
        contacts = crm.associations("deals", deal.id, "contacts")
        assert len(contacts) == 1
        items = [
            crm.get("line_items", i).properties for i, _ in crm.associations("deals", deal.id, "line_items")
        ]
        if not items:
            without_items += 1
        else:
            assert sum(Decimal(i["amount"]) for i in items) == Decimal(p["amount"])
            assert all(Decimal(i["price"]) * Decimal(i["quantity"]) == Decimal(i["amount"]) for i in items)
            assert {i["hs_line_item_currency_code"] for i in items} == {p["deal_currency_code"]}
        rate = Decimal(RATE_TO_EUR_PCT[p["deal_currency_code"]]) / 100
        assert Decimal(p["amount_in_home_currency"]) == (Decimal(p["amount"]) * rate).quantize(
            Decimal("0.01")
        )
        assert (p["hs_is_closed_won"] == "true") == (p["dealstage"] in {"closedwon", "wh_won"})
        assert p["pipeline"] in {"default", "wholesale"}
        assert p["closedate"] >= p["createdate"]
    assert 0.06 < without_items / len(deals) < 0.14
    assert currencies["EUR"] > 0.8 * len(deals) and currencies["USD"] and currencies["GBP"]
    # a few refunds and missing amounts, as the ground truth lists them (the pipeline rejects them)
    rejected = {d["deal_id"]: d["reason"] for d in dataset.ground_truth["rejected_won_deals"]}
    live = {d.id for d in deals if not d.archived}
    assert {i for i in refunds if i in live} == {i for i, r in rejected.items() if r == "negative amount"}
    missing = {i for i, r in rejected.items() if r == "missing amount"}
    assert {i for i in without_amount if i in live} == missing
    assert 2 <= len(rejected) <= 0.03 * sum(1 for d in deals if d.properties["hs_is_closed_won"] == "true")
    # wholesale orders: a long tail from about 500 to 250,000 EUR
    assert Decimal(500) < min(wholesale_eur) < Decimal(700)
    assert Decimal(100_000) < max(wholesale_eur) < Decimal(250_000)
    assert sorted(wholesale_eur)[len(wholesale_eur) // 2] < Decimal(3_000)
    assert sum(1 for v in wholesale_eur if v > 10_000) >= 5
    winners = [c for c in crm.iter_records("contacts") if c.properties.get("hs_merged_object_ids")]
    assert len(winners) == CONTACTS // 100
    for w in winners:
        for loser in w.properties["hs_merged_object_ids"].split(";"):
            assert crm.get("contacts", int(loser)) is None, "merged records are gone"
    assert crm.count("contacts", archived=True) > 0


def test_journeys_stay_within_60_days_before_the_deal(dataset: Dataset) -> None:
    ga4 = dataset.ga4
    dates = ga4.day_dates()
    deal_day = {}
    for deal in dataset.crm.iter_records("deals"):
        ((cid, _),) = dataset.crm.associations("deals", deal.id, "contacts")
        deal_day[cid] = np.datetime64(deal.properties["createdate"][:10], "D")
    # A merged-away duplicate's sessions belong to the record it was merged into.
    winner_of = {
        int(loser): c.id
        for c in dataset.crm.iter_records("contacts")
        for loser in (c.properties.get("hs_merged_object_ids") or "").split(";")
        if loser
    }
    sessions: dict[int, list[np.datetime64]] = {}
    for cid, day in zip(ga4.contact.tolist(), dates, strict=True):
        if cid:
            sessions.setdefault(winner_of.get(cid, cid), []).append(day)
    checked = 0
    for c in dataset.crm.iter_records("contacts"):
        if c.id not in deal_day:
            continue
        days = sessions.get(c.id, [])
        assert days, f"converting contact {c.id} has sessions (at least the one that opened the deal)"
        assert all(0 <= (deal_day[c.id] - d).astype(int) <= 60 for d in days), c.id
        if c.properties["hs_analytics_source"] != "OFFLINE":
            # The original source is the first GA4 session: same day as hs_analytics_first_timestamp.
            assert str(min(days)) == c.properties["hs_analytics_first_timestamp"][:10]
            checked += 1
    assert checked > 100


def test_spend_file_has_exactly_five_bad_rows(dataset: Dataset, written: Path) -> None:
    with (written / "spend.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["period_start", "period_end", "source", "medium", "campaign", "amount", "currency"]
    bad = {b["line"]: b["reason"] for b in dataset.ground_truth["spend_file_bad_rows"]}
    assert len(bad) == 5
    found = {}
    for line, row in enumerate(rows[1:], start=2):
        start, end, _source, _medium, campaign, amount, currency = row
        problems = []
        try:
            dt.date.fromisoformat(start), dt.date.fromisoformat(end)
        except ValueError:
            problems.append("unparseable date")
        try:
            if Decimal(amount) < 0:
                problems.append("negative amount")
        except ArithmeticError:
            problems.append("non-numeric amount")
        if currency not in ("EUR", "USD", "GBP", "CHF"):
            problems.append("unknown currency")
        if not campaign:
            problems.append("missing campaign")
        if problems:
            found[line] = problems
        else:
            assert amount == f"{Decimal(amount):.2f}", "amounts are written like '1234.50'"
    assert set(found) == set(bad)
    assert all(len(p) == 1 and bad[line].startswith(p[0]) for line, p in found.items())
    # invoices in USD and GBP (rates in the sandbox settings), and one CHF row without a rate
    currencies = Counter(row[6] for row in rows[1:])
    assert currencies["USD"] >= 10 and currencies["GBP"] >= 2 and currencies["CHF"] == 1
    assert dataset.ground_truth["spend_rows_without_rate"] == [
        {"line": 1 + next(i for i, row in enumerate(rows[1:], start=1) if row[6] == "CHF"), "currency": "CHF"}
    ]


def test_ground_truth_agrees_with_the_crm_and_the_spend_file(dataset: Dataset, written: Path) -> None:
    truth = json.loads((written / "ground_truth.json").read_text())
    with (written / "ground_truth_contacts.csv").open(newline="") as handle:
        channel_of = {int(r["contact_id"]): r["first_touch_channel"] for r in csv.DictReader(handle)}
    contract_keys = {
        "contacts", "first_touch_channel_by_contact", "won_revenue_by_first_touch_channel",
        "gross_margin_by_first_touch_channel", "spend_file_total_by_channel", "ga4_ad_cost_by_channel",
        "expected_cost_by_channel", "spend_file_bad_rows",
    }  # fmt: skip
    assert (
        contract_keys <= set(truth) and truth["first_touch_channel_by_contact"] == "ground_truth_contacts.csv"
    )
    assert all(isinstance(v, str) for v in truth["won_revenue_by_first_touch_channel"].values())
    crm = dataset.crm
    assert truth["contacts"] == crm.count("contacts") == len(channel_of)
    assert set(channel_of.values()) == set(CHANNEL_IDS)
    # Recompute revenue and margin from what the HubSpot API serves.
    revenue: Counter = Counter()
    margin: Counter = Counter()
    rejected = {d["deal_id"] for d in truth["rejected_won_deals"]}
    for deal in crm.iter_records("deals"):
        p = deal.properties
        if p["hs_is_closed_won"] != "true" or deal.id in rejected:
            continue
        ((cid, _),) = crm.associations("deals", deal.id, "contacts")
        channel = channel_of[cid]
        rate = Decimal(truth["rates_to_eur"][p["deal_currency_code"]])
        revenue[channel] += Decimal(p["amount_in_home_currency"])
        items = [
            crm.get("line_items", i).properties for i, _ in crm.associations("deals", deal.id, "line_items")
        ]
        if items:
            margin[channel] += sum(
                (Decimal(i["amount"]) - Decimal(i["quantity"]) * Decimal(i["hs_cost_of_goods_sold"])) * rate
                for i in items
            )
        else:
            rate_of_pipeline = Decimal(truth["margin_rates"][p["pipeline"]])
            margin[channel] += Decimal(p["amount_in_home_currency"]) * rate_of_pipeline
    for channel in CHANNEL_IDS:
        assert Decimal(truth["won_revenue_by_first_touch_channel"][channel]) == revenue[channel]
        assert Decimal(truth["gross_margin_by_first_touch_channel"][channel]) == margin[channel].quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
    assert sum(revenue.values()) > 0 and all(revenue[c] > 0 for c in ("paid_search", "events", "email"))
    # Spend: good rows of the sheet, by the campaign's channel; Google Ads cost comes from GA4.
    campaign_channel = {k.campaign: k.channel for k in TOUCH_KINDS if k.campaign}
    bad_lines = {b["line"] for b in truth["spend_file_bad_rows"]}
    bad_lines |= {b["line"] for b in truth["spend_rows_without_rate"]}
    spend: Counter = Counter()
    with (written / "spend.csv").open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            if line not in bad_lines:
                rate = Decimal(truth["rates_to_eur"][row["currency"]])
                eur = (Decimal(row["amount"]) * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
                spend[campaign_channel[row["campaign"]]] += eur
    assert {k: Decimal(v) for k, v in truth["spend_file_total_by_channel"].items()} == spend
    ga4_cost = Decimal(truth["ga4_ad_cost_by_channel"]["paid_search"])
    assert ga4_cost * 100 == int(dataset.ga4.metrics["advertiserAdCost"].sum())
    expected = {k: Decimal(v) for k, v in truth["expected_cost_by_channel"].items()}
    assert expected == {**spend, "paid_search": ga4_cost}
    assert expected["paid_search"] != spend["paid_search"], (
        "the invoice and GA4 differ: the winner rule matters"
    )
