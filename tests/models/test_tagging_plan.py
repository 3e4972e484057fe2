"""The tagging plan: normalisation and aliases (Python and the SQL macro agree), channel rules, invalid plans
reported with their line, and tagged links.
"""

from __future__ import annotations

import duckdb
import pytest

from models.runner import define_macros
from models.tagging_plan import (
    DEFAULT_PLAN_PATH,
    TaggingPlanError,
    build_utm_link,
    load_tagging_plan,
    parse_tagging_plan,
)

# docs/contracts.md section 1: the messy variants the sandbox emits and the canonical value they stand for.
VARIANTS = [
    ("source", "Google", "google"),
    ("source", " google ", "google"),
    ("source", "%20google%20", "google"),
    ("source", "fb", "facebook"),
    ("source", "facebook.com", "facebook"),
    ("source", "m.facebook.com", "facebook"),
    ("source", "FB", "facebook"),
    ("source", "LinkedIn", "linkedin"),
    ("source", "lnkd.in", "linkedin"),
    ("source", "linkedin.com", "linkedin"),
    ("source", "ig", "instagram"),
    ("source", "Newsletter", "newsletter"),
    ("source", "news%20letter", "newsletter"),
    ("source", "newsletter ", "newsletter"),
    ("source", '"google"', "google"),
    ("medium", "CPC", "cpc"),
    ("medium", "ppc", "cpc"),
    ("medium", "paid-social", "paid_social"),
    ("medium", "paidsocial", "paid_social"),
    ("medium", "Paid Social", "paid_social"),
    ("medium", "Paid%20Social", "paid_social"),
    ("medium", "e-mail", "email"),
    ("medium", "E-mail", "email"),
    ("medium", "Email", "email"),
    ("medium", "mail", "email"),
    ("campaign", "Vente%20Hiver", "vente_hiver"),
    ("campaign", "vente hiver", "vente_hiver"),
    ("campaign", "vente+hiver", "vente_hiver"),
    ("campaign", "Vente_Hiver", "vente_hiver"),
    ("campaign", "NOEL_CADEAUX", "noel_cadeaux"),
    ("campaign", "(not set)", None),
    ("campaign", "(organic)", None),
    ("source", "", None),
]


@pytest.fixture(scope="module")
def plan():
    return load_tagging_plan()


def test_messy_variants_map_to_canonical_values_in_python_and_sql(plan):
    con = duckdb.connect()
    define_macros(con, plan)
    for field, raw, expected in VARIANTS:
        assert plan.canonicalise(field, raw) == expected, (field, raw)
        normalised = con.execute("select roi_normalise(?)", [raw]).fetchall()[0][0]
        # the SQL macro normalises exactly like Python (aliases and placeholders are joins in the models)
        assert normalised == plan.normalise(raw), (field, raw)


def test_channel_rules_in_order(plan):
    assert plan.channel_for("google", "cpc", "brand_bougies") == ("paid_search", "paid_search")
    assert plan.channel_for("facebook", "cpc", "noel_cadeaux") == ("paid_social", "paid_social")
    assert plan.channel_for("instagram", "social") == ("organic_social", "organic_social")
    assert plan.channel_for("(direct)", "(none)") == ("direct", "direct")
    assert plan.channel_for("salon_bijorhca", "offline") == ("events", "events_offline")
    assert plan.channel_for("blog-deco.fr", "referral") == ("referral", "referral")
    # kept and listed, never guessed
    assert plan.channel_for("partenaire_x", "affiliate") == ("unassigned", "unmatched")
    assert plan.channel_for(None, None) == ("direct", "untagged")
    assert plan.spend_winner_for("google", "cpc", "generic_bougies") == "ga4"
    assert plan.spend_winner_for("linkedin", "paid_social", "b2b_boutiques") == "spend_file"


def test_the_documented_plan_covers_the_contract_vocabulary(plan):
    assert set(plan.channels) == {
        "organic_search",
        "paid_search",
        "paid_social",
        "organic_social",
        "email",
        "referral",
        "direct",
        "events",
        "word_of_mouth",
        "unassigned",
    }
    assert {
        "brand_bougies",
        "generic_bougies",
        "b2b_boutiques",
        "noel_cadeaux",
        "vente_hiver",
        "soldes_ete",
        "salon_maison_objet",
        "salon_bijorhca",
    } == set(plan.canonical["campaign"])
    assert {a.channel for a in plan.offline_answers.values()} == {"events", "word_of_mouth"}
    tables = plan.config_tables()
    assert {"cfg_tagging_aliases", "cfg_tagging_channel_rules", "cfg_tagging_hubspot_sources"} <= set(tables)


def _broken(old: str, new: str) -> str:
    text = DEFAULT_PLAN_PATH.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1)


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if fragment in line)


@pytest.mark.parametrize(
    ("old", "new", "marker", "message"),
    [
        (
            "    channel: paid_social\n",
            "    channel: paid_sociall\n",
            "paid_sociall",
            "unknown channel 'paid_sociall'",
        ),
        (
            "      medium: {equals: email}\n",
            "      medium: {equal: email}\n",
            "{equal: email}",
            "unknown operator 'equal'",
        ),
        ("    ppc: cpc\n", "    ppc: cpcc\n", "ppc: cpcc", "alias target 'cpcc' is not a canonical medium"),
        (
            "  default: spend_file\n",
            "  default: spreadsheet\n",
            "default: spreadsheet",
            "unknown spend source",
        ),
        (
            '      source: {regex: "salon_.*"}\n',
            '      source: {regex: "salon_("}\n',
            "salon_(",
            "invalid regular expression",
        ),
        ("version: 1\n", "version: 7\n", "version: 7", "unsupported version 7"),
    ],
)
def test_invalid_plans_name_the_line(old, new, marker, message):
    text = _broken(old, new)
    with pytest.raises(TaggingPlanError) as error:
        parse_tagging_plan(text, "plan.yaml")
    assert f"plan.yaml:{_line_of(text, marker)}:" in str(error.value)
    assert message in str(error.value) and "Fix:" in str(error.value)


def test_yaml_syntax_errors_and_duplicate_keys_name_the_line():
    text = _broken("  ig: instagram\n", "  ig: instagram\n  fb: [unclosed\n")
    with pytest.raises(TaggingPlanError, match=r"plan.yaml:\d+: not valid YAML"):
        parse_tagging_plan(text, "plan.yaml")
    text = _broken("    lnkd.in: linkedin\n", "    lnkd.in: linkedin\n    fb: linkedin\n")
    with pytest.raises(TaggingPlanError) as error:
        parse_tagging_plan(text, "plan.yaml")
    assert f"plan.yaml:{_line_of(text, 'fb: linkedin')}: sources.aliases.fb: key 'fb' appears twice" in str(
        error.value
    )


def test_build_utm_link_writes_canonical_values(plan):
    link = build_utm_link(
        "https://www.bougies-lumiere.fr/coffret?ref=nl&utm_source=old",
        source="Newsletter",
        medium="E-mail",
        campaign="Vente Hiver",
        plan=plan,
    )
    assert link.url == (
        "https://www.bougies-lumiere.fr/coffret?ref=nl&utm_source=newsletter&utm_medium=email"
        "&utm_campaign=vente_hiver"
    )
    assert link.channel == "email" and len(link.warnings) == 3
    with pytest.raises(TaggingPlanError, match="utm_campaign 'promo_flash' is not in the tagging plan"):
        build_utm_link(
            "https://www.bougies-lumiere.fr/",
            source="newsletter",
            medium="email",
            campaign="promo_flash",
            plan=plan,
        )


def test_campaign_naming_rule_accepts_new_snake_case_campaigns_and_is_checked_against_the_canonical_list():
    from models.tagging_plan import TaggingPlanError, load_tagging_plan, parse_tagging_plan

    plan = load_tagging_plan()
    assert plan.campaign_naming == "[a-z0-9]+(_[a-z0-9]+)*"
    assert plan.follows_campaign_naming("soldes_printemps_2027")
    assert not plan.follows_campaign_naming("Soldes Printemps")
    assert not plan.follows_campaign_naming("promo-50")
    assert ("campaign_naming", plan.campaign_naming) in plan.config_tables()["cfg_tagging_plan"][1]
    text = plan.path.read_text(encoding="utf-8").replace(
        'naming: "[a-z0-9]+(_[a-z0-9]+)*"', 'naming: "[a-z]+"'
    )
    with pytest.raises(TaggingPlanError, match="campaign 'brand_bougies' does not follow the naming"):
        parse_tagging_plan(text, plan.path)


def test_utm_compliance_accepts_a_new_campaign_that_follows_the_naming_rule(raw_data):
    """The built warehouse agrees with `roi utm build`: a campaign not listed in the plan but written by its
    naming rule complies; the same name written another way, or against the rule, is flagged with why."""
    from models.runner import build

    raw_data.contact(1, "2026-05-20T10:00:00Z", hs_analytics_source="DIRECT_TRAFFIC")
    for campaign in ("soldes_printemps_2027", "Soldes Printemps 2027", "promo-50", "brand_bougies"):
        raw_data.traffic("2026-06-01", "google", "cpc", campaign, sessions=3)
    raw_data.ga4_days("traffic_daily", "2026-06-01", "2026-06-01")
    db = raw_data.write()
    assert build(db, params={"as_of": "2026-06-30", "default_margin_rate": None}).ok
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "select raw_campaign, campaign, is_compliant, issues from utm_compliance "
            "where raw_source = 'google' order by raw_campaign"
        ).fetchall()
    finally:
        con.close()
    assert rows == [
        ("Soldes Printemps 2027", "soldes_printemps_2027", False,
         ["campaign written 'Soldes Printemps 2027' instead of 'soldes_printemps_2027'"]),
        ("brand_bougies", "brand_bougies", True, []),  # listed in the plan
        ("promo-50", "promo-50", False, ["campaign promo-50 is not in the plan"]),  # against the rule
        ("soldes_printemps_2027", "soldes_printemps_2027", True, []),  # new, follows the rule
    ]  # fmt: skip
