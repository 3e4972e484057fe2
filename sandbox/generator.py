"""Deterministic data generator for the sandbox: a French candle maker's CRM, web analytics and ad spend.

`generate(contacts, seed)` draws everything with numpy from one seeded generator, so the same
`(seed, contacts)` always gives the same data set. The story and every name in it follow
docs/contracts.md section 1. Draws are vectorised; only the final property dicts are built in Python.

Money is handled as integer cents (and 1/10,000 EUR for margins) so that ground truth is exact.
"""

from __future__ import annotations

import calendar
import datetime as dt
import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from sandbox.dataset import Dataset, Ga4Facts, SpendRow
from sandbox.store import SANDBOX_PIPELINES, default_deal_pipelines

# ---------------------------------------------------------------------------------------------------------
# Settings (named constants; docs/contracts.md section 1 is binding for every name below)
# ---------------------------------------------------------------------------------------------------------
DATA_SET_NOW = dt.datetime(2026, 10, 31, 9, 0, 0, tzinfo=dt.UTC)  # the data set's "today", never the clock
HISTORY_START = dt.date(2025, 5, 1)  # 18 months of history: 2025-05-01 .. 2026-10-30
LAST_DAY = DATA_SET_NOW.date() - dt.timedelta(days=1)  # last complete day of activity
GA4_PROPERTY_ID = "123456789"
HOME_CURRENCY = "EUR"
SITE = "https://www.bougies-lumiere.fr"
EMAIL_DOMAINS = ("gmail.com", "orange.fr", "free.fr", "laposte.net", "outlook.fr", "yahoo.fr")

# Fixed conversion rates to EUR (documented in docs/contracts.md; amount_in_home_currency = amount * rate,
# rounded half-up to the cent). Stored as integer percent so conversions stay exact.
RATE_TO_EUR_PCT = {"EUR": 100, "USD": 92, "GBP": 117}
DEAL_CURRENCY_WEIGHTS = {"EUR": 0.90, "USD": 0.06, "GBP": 0.04}

# Products: (sku, name, {currency: (unit price cents, unit cost cents)}). EUR values are the contract's.
PRODUCTS = {
    "BOUGIE-CLASSIQUE": ("Bougie classique", {"EUR": (800, 400), "USD": (870, 435), "GBP": (685, 342)}),
    "COFFRET-CADEAU": ("Coffret cadeau", {"EUR": (3500, 1500), "USD": (3800, 1630), "GBP": (2990, 1280)}),
    "CARTON-24": (
        "Carton de 24 bougies",
        {"EUR": (15000, 9600), "USD": (16300, 10435), "GBP": (12800, 8205)},
    ),
}
# Deals without line items get their pipeline's margin rate x their EUR amount as gross margin. The shop knows
# these rates, so they are part of the sandbox's model settings ([models.margin_rates] in roi.toml), which
# sandbox mode and `roi demo` pass on: nothing is assumed by the pipeline itself.
MARGIN_RATES = {"default": Decimal("0.5"), "wholesale": Decimal("0.36")}

PIPELINES = SANDBOX_PIPELINES


def model_settings() -> dict[str, dict[str, str]]:
    """The sandbox shop's `[models]` settings (as roi.toml would hold them): margin rates per pipeline and the
    exchange rates of its foreign deals and spend (the fixed rates its amount_in_home_currency uses too)."""
    return {
        "margin_rates": {p: str(r) for p, r in MARGIN_RATES.items()},
        "fx_rates": {c: f"{Decimal(p) / 100:.2f}" for c, p in RATE_TO_EUR_PCT.items() if c != HOME_CURRENCY},
    }


CONTACT_ID_START = 1001
DEAL_ID_START = 5_000_001
LINE_ITEM_ID_START = 9_000_000_001
ASSOC_DEAL_TO_CONTACT = 3  # HubSpot-defined association type ids (v4)
ASSOC_DEAL_TO_LINE_ITEM = 19

SHARE_MERGED_DUPLICATES = 0.01  # contacts that also have a duplicate record merged into them
SHARE_ARCHIVED_CONTACTS = 0.005  # of contacts without deals
SHARE_ARCHIVED_DEALS = 0.01
SHARE_DEALS_WITHOUT_LINE_ITEMS = 0.10
# Wholesale orders have a long tail, as real B2B portals do: a Pareto draw of the order value in EUR, from
# about 500 EUR (4 cases) to 250,000 EUR (1,660 cases). A data set with a handful of wholesale deals still has
# a won deal above 10,000 EUR: the first won one becomes a large account when the draw gave none.
WHOLESALE_MIN_EUR = 500
WHOLESALE_MAX_CASES = 1_660
WHOLESALE_TAIL_ALPHA = 0.7
WHOLESALE_LARGE_ACCOUNT_EUR = 120_000
# A few won deals the pipeline must reject (counted nowhere): refunds booked as a negative deal, and won deals
# whose amount was never filled in. At least one of each once there are 10 won deals.
SHARE_REFUND_DEALS = 0.01
SHARE_WON_DEALS_WITHOUT_AMOUNT = 0.01

FIRST_NAMES = (
    "Camille",
    "Léa",
    "Manon",
    "Chloé",
    "Inès",
    "Sarah",
    "Julie",
    "Emma",
    "Louise",
    "Alice",
    "Lucas",
    "Hugo",
    "Louis",
    "Gabriel",
    "Arthur",
    "Jules",
    "Nathan",
    "Thomas",
    "Paul",
    "Élodie",
    "Mathilde",
    "Claire",
    "Antoine",
    "Nicolas",
    "Zoé",
    "Margaux",
    "Théo",
    "Pauline",
    "Victor",
    "Anaïs",
)
LAST_NAMES = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "Legrand",
)
_ASCII = str.maketrans("éèêëàâäîïôöûüçÉ", "eeeeaaaiioouucE")


# ---------------------------------------------------------------------------------------------------------
# Touch kinds: every way a person can arrive, with the messy UTM variants people really type
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One spelling of a touch: the URL query as typed, and what HubSpot and GA4 record for it."""

    weight: float
    query: str  # first-URL query string ("" = no UTMs)
    ga4: tuple[str, str, str, str, str]  # sessionSource, Medium, CampaignName, ManualTerm, ManualAdContent
    data_1: str
    data_2: str
    referrer: str


@dataclass(frozen=True)
class TouchKind:
    name: str
    channel: str  # true channel id (contracts.md section 1)
    hs_source: str  # hs_analytics_source value
    weight_first: float  # share of first touches
    weight_nurture: float  # share of later touches of a journey
    months: tuple[int, ...] | None  # months the kind runs in (None = all year)
    variants: tuple[Variant, ...]
    offline: bool = False
    campaign: str = ""
    b2b_share: float = 0.1
    hear_about: tuple[str, ...] = ()  # how_did_you_hear_about_us values (offline kinds)
    show_days: tuple[dt.date, ...] = ()  # offline events happen on these days only


NS = "(not set)"


def _utm(source: str, medium: str, campaign: str = "", term: str = "", content: str = "") -> str:
    parts = [f"utm_source={source}", f"utm_medium={medium}"]
    if campaign:
        parts.append(f"utm_campaign={campaign}")
    if term:
        parts.append(f"utm_term={term}")
    if content:
        parts.append(f"utm_content={content}")
    return "&".join(parts)


def _decode(value: str) -> str:
    """What GA4 shows for a typed UTM value: URL-decoded, otherwise as typed (GA4 keeps case)."""
    from urllib.parse import unquote_plus

    return unquote_plus(value)


def _tagged(
    weight: float,
    source: str,
    medium: str,
    campaign: str,
    term: str = "",
    content: str = "",
    data_1: str = "",
    data_2: str = "",
    referrer: str = "",
    ga4_override: tuple[str, str, str] | None = None,
) -> Variant:
    ga4_smc = ga4_override or (_decode(source), _decode(medium), _decode(campaign) or NS)
    ga4 = (*ga4_smc, _decode(term) or NS, _decode(content) or NS)
    return Variant(weight, _utm(source, medium, campaign, term, content), ga4, data_1, data_2, referrer)


def _messy(
    source_variants: Sequence[tuple[float, str]],
    medium_variants: Sequence[tuple[float, str]],
    campaign_variants: Sequence[tuple[float, str]],
    term: str = "",
    content: str = "",
    data_1: str = "",
    referrer: str = "",
    ga4_override: tuple[str, str, str] | None = None,
) -> tuple[Variant, ...]:
    """Cross the spellings: the canonical spelling dominates, each messy one appears now and then."""
    out = []
    for ws, s in source_variants:
        for wm, m in medium_variants:
            for wc, c in campaign_variants:
                out.append(
                    _tagged(
                        ws * wm * wc,
                        s,
                        m,
                        c,
                        term,
                        content,
                        data_1 or _decode(c),
                        _decode(term),
                        referrer,
                        ga4_override,
                    )
                )
    return tuple(out)


def _months(*months: int) -> tuple[int, ...]:
    return months


def _touch_kinds() -> tuple[TouchKind, ...]:
    canon = 0.8
    google_src = ((canon, "google"), (0.12, "Google"), (0.08, "%20google%20"))
    cpc_med = ((canon, "cpc"), (0.12, "CPC"), (0.08, "ppc"))
    social_paid_med = (
        (0.7, "paid_social"),
        (0.08, "paid-social"),
        (0.07, "paidsocial"),
        (0.08, "Paid%20Social"),
        (0.07, "cpc"),
    )
    email_med = ((0.7, "email"), (0.07, "e-mail"), (0.07, "E-mail"), (0.08, "Email"), (0.08, "mail"))
    news_src = ((0.75, "newsletter"), (0.1, "Newsletter"), (0.08, "news%20letter"), (0.07, "newsletter%20"))
    organic = tuple(
        Variant(w, "", (eng, "organic", "(organic)", NS, NS), "bougie artisanale", eng, f"https://www.{dom}/")
        for w, eng, dom in (
            (0.8, "google", "google.com"),
            (0.1, "bing", "bing.com"),
            (0.06, "qwant", "qwant.com"),
            (0.04, "duckduckgo", "duckduckgo.com"),
        )
    )
    referral = tuple(
        Variant(
            w,
            "",
            (dom, "referral", "(referral)", NS, NS),
            dom,
            f"https://{dom}/{path}",
            f"https://{dom}/{path}",
        )
        for w, dom, path in (
            (0.5, "blog-deco.fr", "idees-cadeaux-bougies"),
            (0.3, "marie-claire.fr", "deco/bougies-francaises"),
            (0.2, "etsy.com", "fr/shop/BougiesLumiere"),
        )
    )
    organic_social = tuple(
        _tagged(w, src, "social", "", data_1=label, referrer=ref)
        for w, src, label, ref in (
            (0.45, "instagram", "Instagram", "https://l.instagram.com/"),
            (0.3, "facebook", "Facebook", "https://l.facebook.com/"),
            (0.15, "pinterest", "Pinterest", "https://www.pinterest.fr/"),
            (0.1, "linkedin", "LinkedIn", "https://www.linkedin.com/"),
        )
    )
    # Google Ads auto-tagging (gclid) makes GA4 record google / cpc / <campaign> whatever the typed UTMs say.
    brand = _messy(
        google_src,
        cpc_med,
        ((1.0, "brand_bougies"),),
        term="bougies+lumiere",
        ga4_override=("google", "cpc", "brand_bougies"),
    )
    generic = _messy(
        google_src,
        cpc_med,
        ((1.0, "generic_bougies"),),
        term="bougie+parfumee+soja",
        content="annonce_b",
        ga4_override=("google", "cpc", "generic_bougies"),
    )
    linkedin = _messy(
        ((0.7, "linkedin"), (0.1, "LinkedIn"), (0.1, "lnkd.in"), (0.1, "linkedin.com")),
        social_paid_med,
        ((1.0, "b2b_boutiques"),),
        content="carrousel_revendeurs",
        data_1="b2b_boutiques",
    )
    facebook = _messy(
        (
            (0.55, "facebook"),
            (0.1, "fb"),
            (0.08, "FB"),
            (0.09, "facebook.com"),
            (0.08, "m.facebook.com"),
            (0.1, "ig"),
        ),
        social_paid_med,
        ((0.85, "noel_cadeaux"), (0.15, "NOEL_CADEAUX")),
        content="video_coffret",
    )
    vente_hiver = _messy(
        news_src,
        email_med,
        ((0.7, "vente_hiver"), (0.1, "Vente%20Hiver"), (0.1, "vente+hiver"), (0.1, "Vente_Hiver")),
    )
    soldes_ete = _messy(news_src, email_med, ((1.0, "soldes_ete"),))
    partner = (
        _tagged(1.0, "partenaire_x", "affiliate", "partenariat_printemps", data_1="partenariat_printemps"),
    )
    direct = (Variant(1.0, "", ("(direct)", "(none)", "(direct)", NS, NS), "", "", ""),)
    offline = (Variant(1.0, "", ("", "", "", "", ""), "IMPORT", "", ""),)
    shows_mo = (dt.date(2025, 9, 4), dt.date(2026, 1, 15), dt.date(2026, 9, 3))  # Maison&Objet, 5 days each
    shows_bj = (dt.date(2025, 9, 5), dt.date(2026, 1, 16), dt.date(2026, 9, 4))  # Bijorhca, 4 days each
    return (
        TouchKind("organic_search", "organic_search", "ORGANIC_SEARCH", 0.25, 0.20, None, organic),
        TouchKind(
            "brand_bougies", "paid_search", "PAID_SEARCH", 0.08, 0.15, None, brand, campaign="brand_bougies"
        ),
        TouchKind(
            "generic_bougies",
            "paid_search",
            "PAID_SEARCH",
            0.10,
            0.05,
            None,
            generic,
            campaign="generic_bougies",
        ),
        TouchKind(
            "b2b_boutiques",
            "paid_social",
            "PAID_SOCIAL",
            0.04,
            0.03,
            None,
            linkedin,
            campaign="b2b_boutiques",
            b2b_share=0.7,
        ),
        TouchKind(
            "noel_cadeaux",
            "paid_social",
            "PAID_SOCIAL",
            0.06,
            0.04,
            _months(11, 12),
            facebook,
            campaign="noel_cadeaux",
        ),
        TouchKind("organic_social", "organic_social", "SOCIAL_MEDIA", 0.06, 0.05, None, organic_social),
        TouchKind(
            "vente_hiver",
            "email",
            "EMAIL_MARKETING",
            0.06,
            0.10,
            _months(11, 12, 1, 2),
            vente_hiver,
            campaign="vente_hiver",
        ),
        TouchKind(
            "soldes_ete",
            "email",
            "EMAIL_MARKETING",
            0.04,
            0.08,
            _months(6, 7, 8),
            soldes_ete,
            campaign="soldes_ete",
        ),
        TouchKind("referral", "referral", "REFERRALS", 0.08, 0.05, None, referral, b2b_share=0.2),
        TouchKind("direct", "direct", "DIRECT_TRAFFIC", 0.11, 0.25, None, direct),
        TouchKind(
            "salon_maison_objet",
            "events",
            "OFFLINE",
            0.03,
            0.0,
            None,
            offline,
            offline=True,
            campaign="salon_maison_objet",
            b2b_share=0.8,
            hear_about=("salon_maison_objet",),
            show_days=tuple(d + dt.timedelta(days=i) for d in shows_mo for i in range(5)),
        ),
        TouchKind(
            "salon_bijorhca",
            "events",
            "OFFLINE",
            0.02,
            0.0,
            None,
            offline,
            offline=True,
            campaign="salon_bijorhca",
            b2b_share=0.8,
            hear_about=("salon_bijorhca",),
            show_days=tuple(d + dt.timedelta(days=i) for d in shows_bj for i in range(4)),
        ),
        TouchKind(
            "word_of_mouth",
            "word_of_mouth",
            "OFFLINE",
            0.04,
            0.0,
            None,
            (Variant(1.0, "", ("", "", "", "", ""), "CRM_UI", "", ""),),
            offline=True,
            hear_about=("bouche_a_oreille", "recommandation_client"),
        ),
        TouchKind("partner", "unassigned", "OTHER_CAMPAIGNS", 0.02, 0.0, _months(3, 4, 5), partner),
        # Offline contacts whose "how did you hear" answer is empty: kept as unassigned, never guessed.
        TouchKind(
            "offline_unknown",
            "unassigned",
            "OFFLINE",
            0.01,
            0.0,
            None,
            offline,
            offline=True,
            hear_about=("",),
        ),
    )


TOUCH_KINDS = _touch_kinds()
CHANNEL_IDS = (
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
)

# Marketing spend sheet: campaign -> (source, medium as the sheet writes them, monthly EUR per 5,000 contacts,
# months it runs in). Google Ads rows are the invoice (GA4 cost rounded up to the euro).
SPEND_PLAN = {
    "brand_bougies": ("google", "cpc", None, None),
    "generic_bougies": ("google", "cpc", None, None),
    "b2b_boutiques": ("LinkedIn", "paid_social", Decimal("420.00"), None),
    "noel_cadeaux": ("facebook", "Paid Social", Decimal("950.00"), (11, 12)),
    "vente_hiver": ("newsletter", "email", Decimal("180.00"), (11, 12, 1, 2)),
    "soldes_ete": ("newsletter", "e-mail", Decimal("140.00"), (6, 7, 8)),
    "salon_maison_objet": ("salon_maison_objet", "offline", Decimal("3800.00"), (1, 9)),
    "salon_bijorhca": ("salon_bijorhca", "offline", Decimal("2600.00"), (1, 9)),
}
CPC_CENTS = {"brand_bougies": 45, "generic_bougies": 120}  # Google Ads cost per click
# Invoices not in euros: LinkedIn bills in USD, the Christmas campaign's UK agency in GBP (their monthly
# amount is the EUR budget at the sandbox rate, rounded to the cent). One CHF row has no rate in the sandbox
# settings: the models reject it with the roi.toml line to add.
SPEND_CURRENCY = {"b2b_boutiques": "USD", "noel_cadeaux": "GBP"}
SPEND_ROW_WITHOUT_RATE = SpendRow(
    "2026-05-01", "2026-05-31", "LinkedIn", "paid_social", "b2b_boutiques", "300.00", "CHF"
)
ANONYMOUS_SESSIONS_PER_CONTACT = 4.0  # visitors who never become contacts, relative to contact sessions
# Share of a contact's later GA4 sessions that carry no contact id (another device or browser, cookies
# cleared): GA4 reports them under "(not set)" for the user-scoped dimension. Drawn from its own random stream
# so the rest of the data set does not change with it.
UNTIED_SESSION_SHARE = 0.15
UNTIED_STREAM = 1


# ---------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------
def _iso(ms: np.ndarray) -> list[str]:
    """Epoch milliseconds -> HubSpot's ISO strings ('2026-01-02T03:04:05.678Z').

    Digits are computed with numpy into one ASCII buffer, then sliced: about twice as fast as
    np.datetime_as_string plus a Python concatenation per value, which matters for 1M contacts x 8 dates.
    """
    ms = np.asarray(ms, dtype=np.int64)
    days = ms // _DAY_MS
    rest = ms - days * _DAY_MS
    day = days.astype("datetime64[D]")
    month_start = day.astype("datetime64[M]")
    fields = (
        (0, 4, day.astype("datetime64[Y]").astype(np.int64) + 1970),
        (5, 2, month_start.astype(np.int64) % 12 + 1),
        (8, 2, (day - month_start).astype(np.int64) + 1),
        (11, 2, rest // 3_600_000),
        (14, 2, rest // 60_000 % 60),
        (17, 2, rest // 1000 % 60),
        (20, 3, rest % 1000),
    )
    out = np.empty((len(ms), 24), dtype=np.uint8)
    for column, width, value in fields:
        for k in range(width):
            out[:, column + width - 1 - k] = 48 + (value // 10**k) % 10
    for column, char in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (23, "Z")):
        out[:, column] = ord(char)
    text = out.tobytes().decode("ascii")
    return [text[i : i + 24] for i in range(0, len(text), 24)]


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(int(cents))
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _money_1e4(units: int) -> str:
    """1/10,000 EUR -> cents string, rounded half-up (how ground-truth totals are rounded)."""
    return str((Decimal(int(units)) / Decimal(10_000)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


_EPOCH = dt.date(1970, 1, 1)
_DAY_MS = 86_400_000


def _day_ms(day: dt.date) -> int:
    return (day - _EPOCH).days * _DAY_MS


@dataclass
class _Sessions:
    """Columns of the contact sessions being built (one row per session)."""

    day: list[np.ndarray] = field(default_factory=list)
    kind: list[np.ndarray] = field(default_factory=list)
    variant: list[np.ndarray] = field(default_factory=list)
    contact: list[np.ndarray] = field(default_factory=list)
    key_events: list[np.ndarray] = field(default_factory=list)
    revenue: list[np.ndarray] = field(default_factory=list)
    ms: list[np.ndarray] = field(default_factory=list)

    def add(self, day, kind, variant, contact, key_events, revenue, ms) -> None:
        for name, value in zip(
            ("day", "kind", "variant", "contact", "key_events", "revenue", "ms"),
            (day, kind, variant, contact, key_events, revenue, ms),
            strict=True,
        ):
            getattr(self, name).append(np.asarray(value))

    def column(self, name: str) -> np.ndarray:
        return np.concatenate(getattr(self, name))


# ---------------------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------------------
def generate(contacts: int = 5000, seed: int = 42) -> Dataset:
    """Build a complete sandbox data set. Deterministic in (seed, contacts)."""
    if contacts < 1:
        raise ValueError(f"contacts must be at least 1, got {contacts}")
    rng = np.random.default_rng([seed, contacts])
    # Millions of new dicts would trigger the cyclic GC over and over; nothing built here forms cycles.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Builder(rng, contacts, seed).build()
    finally:
        if gc_was_enabled:
            gc.enable()


class _Builder:
    def __init__(self, rng: np.random.Generator, n: int, seed: int) -> None:
        self.rng = rng
        self.n = n
        self.seed = seed
        self.first_day = (HISTORY_START - _EPOCH).days
        self.last_day = (LAST_DAY - _EPOCH).days
        self.n_days = self.last_day - self.first_day + 1
        self.scale = Decimal(n) / Decimal(5000)
        days = np.arange(self.first_day, self.last_day + 1)
        self.day_month = (days.astype("datetime64[D]").astype("datetime64[M]").astype(int) % 12) + 1
        # Every kind's allowed days (seasonal campaigns only in their months, shows only on show days).
        self.kind_days: list[np.ndarray] = []
        for kind in TOUCH_KINDS:
            if kind.show_days:
                allowed = np.array(
                    [(d - _EPOCH).days for d in kind.show_days if HISTORY_START <= d <= LAST_DAY]
                )
            elif kind.months:
                allowed = days[np.isin(self.day_month, kind.months)]
            else:
                allowed = days
            self.kind_days.append(allowed)
        self.variant_weights = [
            np.array([v.weight for v in k.variants]) / sum(v.weight for v in k.variants) for k in TOUCH_KINDS
        ]

    # -- small vectorised draws ------------------------------------------------------------------------
    def _draw_variants(self, kinds: np.ndarray) -> np.ndarray:
        out = np.zeros(len(kinds), dtype=np.int32)
        for k in np.unique(kinds):
            mask = kinds == k
            w = self.variant_weights[k]
            out[mask] = self.rng.choice(len(w), size=int(mask.sum()), p=w)
        return out

    def _daytime_ms(self, day: np.ndarray) -> np.ndarray:
        # People are active 06:00-21:00 UTC, so the Europe/Paris date equals the UTC date (GA4 dates agree).
        return day.astype(np.int64) * _DAY_MS + self.rng.integers(6 * 3_600_000, 21 * 3_600_000, len(day))

    def _nurture_kinds(self, days: np.ndarray) -> np.ndarray:
        """Later touches of a journey: a mix of channels, seasonal campaigns only in season."""
        weights = np.array([k.weight_nurture for k in TOUCH_KINDS])
        kinds = self.rng.choice(len(TOUCH_KINDS), size=len(days), p=weights / weights.sum())
        month = self.day_month[days - self.first_day]
        direct = next(i for i, k in enumerate(TOUCH_KINDS) if k.name == "direct")
        for i, k in enumerate(TOUCH_KINDS):
            if k.months:
                kinds[(kinds == i) & ~np.isin(month, k.months)] = direct
        return kinds

    # -- build -----------------------------------------------------------------------------------------
    def build(self) -> Dataset:
        rng, n = self.rng, self.n
        kinds = TOUCH_KINDS
        ids = np.arange(CONTACT_ID_START, CONTACT_ID_START + n, dtype=np.int64)
        w_first = np.array([k.weight_first for k in kinds])
        kind = rng.choice(len(kinds), size=n, p=w_first / w_first.sum()).astype(np.int32)
        variant = self._draw_variants(kind)
        first_day = np.zeros(n, dtype=np.int64)
        for k in range(len(kinds)):
            mask = kind == k
            first_day[mask] = rng.choice(self.kind_days[k], size=int(mask.sum()))
        # Leave at least one day after the first touch so a journey can go on.
        first_day = np.minimum(first_day, self.last_day - 1)
        first_ms = self._daytime_ms(first_day)
        offline = np.array([k.offline for k in kinds])[kind]
        create_ms = first_ms + np.where(offline, 0, rng.integers(60_000, 2 * 3_600_000, n))
        create_day = create_ms // _DAY_MS

        # Deals: converting contacts open one deal 1-55 days after the first touch (inside a 60-day lookback).
        b2b = rng.random(n) < np.array([k.b2b_share for k in kinds])[kind]
        p_convert = np.where(b2b, 0.22, 0.14)
        converts = rng.random(n) < p_convert
        deal_day = first_day + rng.integers(1, 56, n)
        converts &= deal_day <= self.last_day
        deal_ms = self._daytime_ms(deal_day)

        sessions = _Sessions()
        self._contact_sessions(sessions, ids, kind, variant, first_day, first_ms, offline, converts, deal_day)

        deals = self._deals(ids[converts], b2b[converts], deal_day[converts], deal_ms[converts])
        # Purchase on the site: the session that opened a won online (default pipeline) deal carries revenue.
        # (refunds and deals without an amount were typed into the CRM by hand: the site saw no purchase)
        won_online = deals["won"] & (deals["pipeline"] == 0) & ~deals["refund"] & ~deals["no_amount"]
        sessions.add(
            deals["day"][won_online],
            np.full(int(won_online.sum()), _kind_index("direct")),
            np.zeros(int(won_online.sum()), dtype=np.int32),
            deals["contact"][won_online],
            np.ones(int(won_online.sum()), dtype=np.int64),
            deals["home_cents"][won_online],
            deals["create_ms"][won_online] + 60_000,
        )

        contact_props, merged, archived_contacts = self._contact_properties(
            ids, kind, variant, first_ms, create_ms, create_day, converts, deal_day, deal_ms, deals, sessions
        )
        ga4 = self._ga4_facts(sessions)
        spend_rows, bad_rows = self._spend_rows(ga4)

        dataset = Dataset(
            seed=self.seed,
            contacts=n,
            now=DATA_SET_NOW,
            ga4_property_id=GA4_PROPERTY_ID,
            ga4=ga4,
            spend_rows=spend_rows,
        )
        merged_into = self._load_crm(dataset, contact_props, merged, archived_contacts, deals)
        dataset.ground_truth = self._ground_truth(
            ids, kind, archived_contacts, deals, spend_rows, bad_rows, ga4
        )
        # Keyed by the id each person has in the CRM now (a merged contact has the merge's new id).
        dataset.first_touch_channel_by_contact = {
            merged_into.get(int(i), int(i)): CHANNEL_IDS.index(kinds[k].channel)
            for i, k in zip(ids.tolist(), kind.tolist(), strict=True)
        }
        for cid in archived_contacts:
            dataset.first_touch_channel_by_contact.pop(cid, None)
        return dataset

    # -- GA4 sessions of contacts ----------------------------------------------------------------------
    def _contact_sessions(
        self, s: _Sessions, ids, kind, variant, first_day, first_ms, offline, converts, deal_day
    ) -> None:
        rng, n = self.rng, self.n
        web = ~offline
        # The first touch is the session where the visitor filled in the form (one key event).
        s.add(
            first_day[web],
            kind[web],
            variant[web],
            ids[web],
            np.ones(int(web.sum()), dtype=np.int64),
            np.zeros(int(web.sum()), dtype=np.int64),
            first_ms[web],
        )
        # Later touches: 1-5 for converting contacts (between first touch and deal), 0-2 for the others.
        extra = np.where(converts, rng.integers(1, 6, n), rng.integers(0, 3, n))
        owner = np.repeat(np.arange(n), extra)
        start = first_day[owner]
        end = np.where(converts[owner], deal_day[owner], np.minimum(start + 30, self.last_day))
        # Offline contacts' web sessions come strictly after the offline first touch.
        lo = start + offline[owner].astype(np.int64)
        day = lo + (rng.random(len(owner)) * (np.maximum(end - lo, 0) + 1)).astype(np.int64)
        day = np.minimum(day, self.last_day)
        nk = self._nurture_kinds(day)
        ms = self._daytime_ms(day)
        # A same-day later touch must come after the first touch.
        ms = np.where(day == start, np.maximum(ms, first_ms[owner] + 600_000), ms)
        ms = np.minimum(ms, (day + 1) * _DAY_MS - 1)
        s.add(
            day,
            nk,
            self._draw_variants(nk),
            ids[owner],
            np.zeros(len(owner), dtype=np.int64),
            np.zeros(len(owner), dtype=np.int64),
            ms,
        )

    # -- deals and line items --------------------------------------------------------------------------
    def _deals(self, contact, b2b, day, create_ms) -> dict[str, np.ndarray]:
        rng = self.rng
        m = len(contact)
        deal_id = np.arange(DEAL_ID_START, DEAL_ID_START + m, dtype=np.int64)
        cur_names = list(DEAL_CURRENCY_WEIGHTS)
        currency = rng.choice(len(cur_names), size=m, p=list(DEAL_CURRENCY_WEIGHTS.values()))
        rate = np.array([RATE_TO_EUR_PCT[c] for c in cur_names])[currency]
        # Quantities per product: candles, gift boxes, cases of 24.
        q_candle = np.where(b2b, 0, np.where(rng.random(m) < 0.85, rng.integers(1, 13, m), 0))
        q_box = np.where(
            b2b,
            np.where(rng.random(m) < 0.3, rng.integers(5, 25, m), 0),
            np.where(rng.random(m) < 0.5, rng.integers(1, 4, m), 0),
        )
        # the old small-order draw stays, so the rest of a seed's data set is what it was
        rng.integers(2, 21, m)
        q_case = np.where(b2b, self._wholesale_cases(b2b), 0)
        q_candle = np.where((q_candle + q_box + q_case) == 0, 1, q_candle)
        has_items = rng.random(m) >= SHARE_DEALS_WITHOUT_LINE_ITEMS
        # Stage: older deals are mostly closed; recent ones mostly open.
        age = self.last_day - day
        p_closed = np.clip(age / 45.0, 0.05, 0.9)
        closed = rng.random(m) < p_closed
        won = closed & (rng.random(m) < np.where(b2b, 0.5, 0.6))
        close_day = day + np.minimum(rng.integers(2, 41, m), np.maximum(age, 0))
        close_day = np.where(closed, close_day, day + 30)  # open deals: expected close date
        close_ms = np.where(
            closed,
            np.maximum(self._daytime_ms(close_day), create_ms + 60_000),
            close_day * _DAY_MS + 12 * 3_600_000,
        )
        archived = rng.random(m) < SHARE_ARCHIVED_DEALS
        open_stage = rng.integers(0, 4, m)
        self._ensure_a_large_won_account(q_case, b2b & won & ~archived)
        qty = np.stack([q_candle, q_box, q_case], axis=1)
        skus = list(PRODUCTS)
        price = np.array([[PRODUCTS[s][1][c][0] for s in skus] for c in cur_names])[currency]
        cost = np.array([[PRODUCTS[s][1][c][1] for s in skus] for c in cur_names])[currency]
        amount_cents = (qty * price).sum(axis=1)
        cogs_cents = (qty * cost).sum(axis=1)
        home_cents = (amount_cents * rate + 50) // 100  # half-up to the cent (amounts are positive)
        # Margin in 1/10,000 EUR: exact; deals without line items use their pipeline's margin rate.
        rate_1e2 = np.array([int(MARGIN_RATES[p] * 100) for p in PIPELINES])[b2b.astype(np.int32)]
        margin_1e4 = np.where(has_items, (amount_cents - cogs_cents) * rate, home_cents * rate_1e2)
        refund, no_amount = self._bad_won_amounts(won & ~archived)
        has_items &= ~(refund | no_amount)
        return {
            "id": deal_id,
            "contact": contact,
            "b2b": b2b,
            "pipeline": b2b.astype(np.int32),
            "day": day,
            "create_ms": create_ms,
            "currency": currency,
            "rate": rate,
            "qty": qty,
            "price": price,
            "cost": cost,
            "amount_cents": amount_cents,
            "home_cents": home_cents,
            "has_items": has_items,
            "margin_1e4": margin_1e4,
            "closed": closed,
            "won": won,
            "close_ms": close_ms,
            "archived": archived,
            "open_stage": open_stage,
            "refund": refund,
            "no_amount": no_amount,
        }

    def _wholesale_cases(self, b2b: np.ndarray) -> np.ndarray:
        """Cases of 24 per wholesale order: order value ~ Pareto(WHOLESALE_TAIL_ALPHA) from WHOLESALE_MIN_EUR.

        Drawn from a generator of its own, so the rest of the data set stays what it was for a seed.
        """
        tail = np.random.default_rng([self.seed, self.n, 1])
        value_eur = WHOLESALE_MIN_EUR * (1.0 - tail.random(len(b2b))) ** (-1.0 / WHOLESALE_TAIL_ALPHA)
        case_eur = PRODUCTS["CARTON-24"][1]["EUR"][0] / 100
        return np.clip(np.rint(value_eur / case_eur), 4, WHOLESALE_MAX_CASES).astype(np.int64)

    @staticmethod
    def _ensure_a_large_won_account(cases: np.ndarray, won_wholesale: np.ndarray) -> None:
        """The first won wholesale deal becomes a large account when no won one is above 10,000 EUR."""
        case_eur = PRODUCTS["CARTON-24"][1]["EUR"][0] // 100
        won_ids = np.flatnonzero(won_wholesale)
        if len(won_ids) and cases[won_ids].max() * case_eur <= 10_000:
            cases[won_ids[0]] = WHOLESALE_LARGE_ACCOUNT_EUR // case_eur

    def _bad_won_amounts(self, counted_won: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(refund, no amount) masks over the deals: a few won, live deals each (rejected by the pipeline)."""
        pick = np.random.default_rng([self.seed, self.n, 2])
        won_ids = np.flatnonzero(counted_won)
        refund = np.zeros(len(counted_won), dtype=bool)
        no_amount = np.zeros(len(counted_won), dtype=bool)
        if len(won_ids) < 10:
            return refund, no_amount
        n_refund = max(1, int(len(won_ids) * SHARE_REFUND_DEALS))
        n_missing = max(1, int(len(won_ids) * SHARE_WON_DEALS_WITHOUT_AMOUNT))
        chosen = pick.choice(won_ids, size=n_refund + n_missing, replace=False)
        refund[chosen[:n_refund]] = True
        no_amount[chosen[n_refund:]] = True
        return refund, no_amount

    # -- contact properties ----------------------------------------------------------------------------
    def _contact_properties(
        self,
        ids,
        kind,
        variant,
        first_ms,
        create_ms,
        create_day,
        converts,
        deal_day,
        deal_ms,
        deals,
        sessions,
    ):
        rng, n = self.rng, self.n
        now_ms = int(DATA_SET_NOW.timestamp() * 1000)
        first = rng.integers(0, len(FIRST_NAMES), n)
        last = rng.integers(0, len(LAST_NAMES), n)
        domain = rng.integers(0, len(EMAIL_DOMAINS), n)
        first_l = [f.lower().translate(_ASCII) for f in FIRST_NAMES]
        last_l = [x.lower().translate(_ASCII) for x in LAST_NAMES]

        # Lifecycle dates: lead at creation; MQL, SQL before the deal; opportunity at deal; customer at win.
        deal_of = np.full(n, -1, dtype=np.int64)
        deal_of[deals["contact"] - CONTACT_ID_START] = np.arange(len(deals["id"]))
        has = deal_of >= 0
        span = np.maximum(deal_ms - create_ms, 2)
        mql_ms = np.where(
            has,
            create_ms + (span * rng.uniform(0.1, 0.5, n)).astype(np.int64),
            create_ms + rng.integers(1, 20, n) * _DAY_MS,
        )
        is_mql = has | ((rng.random(n) < 0.25) & (mql_ms < now_ms))
        sql_ms = create_ms + (span * rng.uniform(0.55, 0.95, n)).astype(np.int64)
        won = np.zeros(n, dtype=bool)
        won[has] = deals["won"][deal_of[has]]
        cust_ms = np.zeros(n, dtype=np.int64)
        cust_ms[has] = deals["close_ms"][deal_of[has]]
        stage_names = np.array(["lead", "marketingqualifiedlead", "opportunity", "customer"])
        stage = np.where(won, 3, np.where(has, 2, np.where(is_mql, 1, 0)))

        # Latest source: the last session of each contact (offline contacts without a session keep their own).
        s_contact = sessions.column("contact")
        s_ms = sessions.column("ms")
        s_kind = sessions.column("kind")
        s_var = sessions.column("variant")
        order = np.lexsort((s_ms, s_contact))
        last_idx = order[np.r_[np.diff(s_contact[order]) != 0, True]]
        latest_kind = kind.copy()
        latest_var = variant.copy()
        latest_ms = create_ms.copy()
        pos = s_contact[last_idx] - CONTACT_ID_START
        latest_kind[pos], latest_var[pos], latest_ms[pos] = s_kind[last_idx], s_var[last_idx], s_ms[last_idx]

        modified_ms = np.maximum.reduce(
            [
                create_ms,
                np.where(is_mql, mql_ms, 0),
                np.where(has, deal_ms, 0),
                np.where(won, cust_ms, 0),
                latest_ms,
            ]
        )
        modified_ms = np.minimum(modified_ms + rng.integers(0, 3 * 3_600_000, n), now_ms)

        iso_first = _iso(first_ms)
        iso_create = _iso(create_ms)
        iso_mql = _iso(mql_ms)
        iso_sql = _iso(sql_ms)
        iso_deal = _iso(deal_ms)
        iso_cust = _iso(cust_ms)
        iso_latest = _iso(latest_ms)
        iso_mod = _iso(modified_ms)
        stage_list = stage_names[stage].tolist()

        # Per-kind, per-variant property fragments are built once and shared between contacts.
        fragments = []
        for k in TOUCH_KINDS:
            per_variant = []
            for v in k.variants:
                frag: dict[str, str] = {"hs_analytics_source": k.hs_source}
                if v.data_1:
                    frag["hs_analytics_source_data_1"] = v.data_1
                if v.data_2:
                    frag["hs_analytics_source_data_2"] = v.data_2
                if not k.offline:
                    frag["hs_analytics_first_url"] = f"{SITE}/" + (f"?{v.query}" if v.query else "")
                    if v.referrer:
                        frag["hs_analytics_first_referrer"] = v.referrer
                per_variant.append(frag)
            fragments.append(per_variant)
        latest_fragments = [
            [
                {
                    "hs_latest_source": k.hs_source,
                    **({"hs_latest_source_data_1": v.data_1} if v.data_1 else {}),
                }
                for v in k.variants
            ]
            for k in TOUCH_KINDS
        ]
        hear = [k.hear_about for k in TOUCH_KINDS]
        hear_pick = rng.integers(0, 2, n)

        # Plain lists: indexing numpy arrays element by element is several times slower.
        has_l, mql_l, won_l = has.tolist(), is_mql.tolist(), won.tolist()
        kind_l, var_l = kind.tolist(), variant.tolist()
        lkind_l, lvar_l = latest_kind.tolist(), latest_var.tolist()
        first_names = [FIRST_NAMES[i] for i in first.tolist()]
        last_names = [LAST_NAMES[i] for i in last.tolist()]
        emails = [
            f"{first_l[f]}.{last_l[la]}.{cid}@{EMAIL_DOMAINS[dm]}"
            for f, la, cid, dm in zip(
                first.tolist(), last.tolist(), ids.tolist(), domain.tolist(), strict=True
            )
        ]
        hear_answers = [
            (hear[k][pick % len(hear[k])] or None) if hear[k] else ""
            for k, pick in zip(kind_l, hear_pick.tolist(), strict=True)
        ]
        ids_text = [str(i) for i in ids.tolist()]
        props: list[dict[str, str | None]] = []
        append = props.append
        for i in range(n):
            p = {
                "email": emails[i],
                "firstname": first_names[i],
                "lastname": last_names[i],
                "createdate": iso_create[i],
                "lastmodifieddate": iso_mod[i],
                "hs_object_id": ids_text[i],
                "lifecyclestage": stage_list[i],
                "hs_lifecyclestage_lead_date": iso_create[i],
                "hs_analytics_first_timestamp": iso_first[i],
                **fragments[kind_l[i]][var_l[i]],
                **latest_fragments[lkind_l[i]][lvar_l[i]],
                "hs_latest_source_timestamp": iso_latest[i],
            }
            if mql_l[i]:
                p["hs_lifecyclestage_marketingqualifiedlead_date"] = iso_mql[i]
            if has_l[i]:
                p["hs_lifecyclestage_salesqualifiedlead_date"] = iso_sql[i]
                p["hs_lifecyclestage_opportunity_date"] = iso_deal[i]
                if won_l[i]:
                    p["hs_lifecyclestage_customer_date"] = iso_cust[i]
            if hear_answers[i] != "":
                p["how_did_you_hear_about_us"] = hear_answers[i]
            append(p)

        # Some people exist twice; the duplicate (a later sign-up) was merged into the original record.
        n_dup = round(n * SHARE_MERGED_DUPLICATES)
        winners = np.sort(rng.choice(n, size=n_dup, replace=False)) if n_dup else np.array([], dtype=np.int64)
        dup_ms = np.minimum(create_ms[winners] + rng.integers(1, 20, n_dup) * 3_600_000, now_ms - _DAY_MS)
        # ... and before the winner's deal, so the duplicate's session is part of the journey.
        dup_ms = np.where(has[winners], np.minimum(dup_ms, deal_ms[winners] - 60_000), dup_ms)
        merge_ms = np.minimum(dup_ms + rng.integers(1, 5, n_dup) * _DAY_MS, now_ms)
        iso_dup, iso_merge = _iso(dup_ms), _iso(merge_ms)
        loser_ids = np.arange(CONTACT_ID_START + n, CONTACT_ID_START + n + n_dup, dtype=np.int64)
        merged = []
        for j, w in enumerate(winners.tolist()):
            p = {
                "email": f"{first_l[first[w]]}.{last_l[last[w]]}+shop@{EMAIL_DOMAINS[(domain[w] + 1) % 6]}",
                "firstname": FIRST_NAMES[first[w]],
                "lastname": LAST_NAMES[last[w]],
                "createdate": iso_dup[j],
                "lastmodifieddate": iso_merge[j],
                "lifecyclestage": "lead",
                "hs_lifecyclestage_lead_date": iso_dup[j],
                "hs_analytics_source": "DIRECT_TRAFFIC",
                "hs_analytics_first_url": f"{SITE}/",
                "hs_analytics_first_timestamp": iso_dup[j],
            }
            merged.append((int(loser_ids[j]), int(ids[w]), p, int(dup_ms[j]), int(merge_ms[j])))
        # The duplicate's own GA4 session, tagged with the loser id (pipelines must follow the merge).
        sessions.add(
            dup_ms // _DAY_MS,
            np.full(n_dup, _kind_index("direct")),
            np.zeros(n_dup, dtype=np.int32),
            loser_ids,
            np.ones(n_dup, dtype=np.int64),
            np.zeros(n_dup, dtype=np.int64),
            dup_ms,
        )

        no_deal = np.flatnonzero(~has)
        n_arch = round(n * SHARE_ARCHIVED_CONTACTS)
        archived = set(ids[rng.choice(no_deal, size=min(n_arch, len(no_deal)), replace=False)].tolist())
        archived -= {w for _, w, *_ in merged}
        return (ids, props, create_ms, modified_ms), merged, archived

    # -- GA4 facts -------------------------------------------------------------------------------------
    def _ga4_facts(self, s: _Sessions) -> Ga4Facts:
        rng = self.rng
        day = s.column("day").astype(np.int64)
        kind = s.column("kind").astype(np.int64)
        var = s.column("variant").astype(np.int64)
        contact = self._ga4_contact_ids(s.column("contact").astype(np.int64), s.column("ms"))
        key_events = s.column("key_events").astype(np.int64)
        revenue = s.column("revenue").astype(np.int64)
        # Anonymous visitors: pre-aggregated daily rows per (kind, variant), proportional to contact traffic.
        web_kinds = [i for i, k in enumerate(TOUCH_KINDS) if not k.offline]
        share = np.bincount(kind, minlength=len(TOUCH_KINDS)).astype(float)
        a_day, a_kind, a_var, a_sessions = [], [], [], []
        days = np.arange(self.first_day, self.last_day + 1)
        for k in web_kinds:
            allowed = np.isin(days, self.kind_days[k]) if TOUCH_KINDS[k].months else np.ones(len(days), bool)
            per_day = share[k] * ANONYMOUS_SESSIONS_PER_CONTACT / max(int(allowed.sum()), 1)
            for vi, w in enumerate(self.variant_weights[k]):
                lam = per_day * w * allowed
                counts = rng.poisson(lam)
                keep = counts > 0
                a_day.append(days[keep])
                a_kind.append(np.full(int(keep.sum()), k))
                a_var.append(np.full(int(keep.sum()), vi))
                a_sessions.append(counts[keep])
        # Google Ads: every click on a day's ads of a campaign, with or without a recorded session (some
        # visitors leave before the tag fires). Cost, clicks and impressions go on their own google / cpc /
        # <campaign> rows with zero sessions, so the reported sessions stay those of the visits above.
        paid_sessions = {}
        for name in CPC_CENTS:
            k = _kind_index(name)
            per_day = np.bincount(day[kind == k] - self.first_day, minlength=self.n_days)
            for d_arr, k_arr, s_arr in zip(a_day, a_kind, a_sessions, strict=True):
                if len(k_arr) and k_arr[0] == k:
                    per_day += np.bincount(
                        d_arr - self.first_day, weights=s_arr, minlength=self.n_days
                    ).astype(np.int64)
            paid_sessions[name] = per_day
        ad_rows = {"day": [], "kind": [], "clicks": [], "impressions": [], "cost": []}
        for name, cpc in CPC_CENTS.items():
            sessions_per_day = paid_sessions[name]
            clicks = sessions_per_day + rng.poisson(0.25 * sessions_per_day + 0.2)
            active = clicks > 0
            clicks = clicks[active]
            ad_rows["day"].append(days[active])
            ad_rows["kind"].append(np.full(len(clicks), _kind_index(name)))
            ad_rows["clicks"].append(clicks)
            ad_rows["impressions"].append(clicks * rng.integers(12, 30, len(clicks)))
            jitter = rng.integers(-cpc // 4, cpc // 4 + 1, len(clicks))
            ad_rows["cost"].append(np.maximum(clicks * cpc + jitter, 1))
        n_ad = sum(len(x) for x in ad_rows["day"])
        a_day.append(np.concatenate(ad_rows["day"]))
        a_kind.append(np.concatenate(ad_rows["kind"]))
        a_var.append(np.zeros(n_ad, dtype=np.int64))
        a_sessions.append(np.zeros(n_ad, dtype=np.int64))
        a_day_c = np.concatenate(a_day)
        a_kind_c = np.concatenate(a_kind)
        a_var_c = np.concatenate(a_var)
        a_sess = np.concatenate(a_sessions).astype(np.int64)
        a_users = (a_sess * rng.uniform(0.8, 0.95, len(a_sess))).astype(np.int64)
        a_users = np.where(a_sess > 0, np.maximum(a_users, 1), 0)
        cost = np.zeros(len(a_sess), dtype=np.int64)
        clicks = np.zeros(len(a_sess), dtype=np.int64)
        impressions = np.zeros(len(a_sess), dtype=np.int64)
        cost[-n_ad:] = np.concatenate(ad_rows["cost"])
        clicks[-n_ad:] = np.concatenate(ad_rows["clicks"])
        impressions[-n_ad:] = np.concatenate(ad_rows["impressions"])

        all_day = np.concatenate([day, a_day_c])
        all_kind = np.concatenate([kind, a_kind_c])
        all_var = np.concatenate([var, a_var_c])
        n_c = len(day)
        # Dimension strings per (kind, variant), coded into per-dimension string tables.
        combos = [(k, vi) for k in range(len(TOUCH_KINDS)) for vi in range(len(TOUCH_KINDS[k].variants))]
        max_variants = max(len(k.variants) for k in TOUCH_KINDS)
        combo_lookup = np.zeros((len(TOUCH_KINDS), max_variants), dtype=np.int64)
        for i, (k, vi) in enumerate(combos):
            combo_lookup[k, vi] = i
        combo_of = combo_lookup[all_kind, all_var]
        dim_values: dict[str, list[str]] = {}
        for di, dim in enumerate(
            (
                "sessionSource",
                "sessionMedium",
                "sessionCampaignName",
                "sessionManualTerm",
                "sessionManualAdContent",
            )
        ):
            dim_values[dim] = [TOUCH_KINDS[k].variants[v].ga4[di] for k, v in combos]
        dim_values["sessionDefaultChannelGroup"] = [
            _ga4_channel_group(*TOUCH_KINDS[k].variants[v].ga4[:3]) for k, v in combos
        ]
        dims: dict[str, np.ndarray] = {}
        tables: dict[str, list[str]] = {}
        for dim, values in dim_values.items():
            table = sorted(set(values))
            code = {v: i for i, v in enumerate(table)}
            per_combo = np.array([code[v] for v in values], dtype=np.int32)
            dims[dim] = per_combo[combo_of]
            tables[dim] = table
        zeros_a = np.zeros(len(a_sess), dtype=np.int64)
        return Ga4Facts(
            first_day=HISTORY_START,
            day=(all_day - self.first_day).astype(np.int32),
            dims=dims,
            tables=tables,
            contact=np.concatenate([contact, zeros_a]),
            metrics={
                "sessions": np.concatenate([np.ones(n_c, dtype=np.int64), a_sess]),
                "totalUsers": np.concatenate([np.ones(n_c, dtype=np.int64), a_users]),
                "keyEvents": np.concatenate([key_events, zeros_a]),
                "purchaseRevenue": np.concatenate([revenue, zeros_a]),
                "totalRevenue": np.concatenate([revenue, zeros_a]),
                "transactions": np.concatenate([(revenue > 0).astype(np.int64), zeros_a]),
                "advertiserAdCost": np.concatenate([np.zeros(n_c, dtype=np.int64), cost]),
                "advertiserAdClicks": np.concatenate([np.zeros(n_c, dtype=np.int64), clicks]),
                "advertiserAdImpressions": np.concatenate([np.zeros(n_c, dtype=np.int64), impressions]),
            },
            processing_days=[LAST_DAY - dt.timedelta(days=1), LAST_DAY],
        )

    def _ga4_contact_ids(self, contact: np.ndarray, ms: np.ndarray) -> np.ndarray:
        """The contact id GA4 sees per session: the first session of each contact carries it (the form
        sets the user property); a later one has no id ("(not set)", code 0) with UNTIED_SESSION_SHARE
        chance."""
        untie = np.random.default_rng([self.seed, self.n, UNTIED_STREAM]).random(len(contact))
        untied = untie < UNTIED_SESSION_SHARE
        order = np.lexsort((ms, contact))
        first_of_contact = order[np.r_[True, contact[order][1:] != contact[order][:-1]]]
        untied[first_of_contact] = False
        return np.where(untied, 0, contact)

    # -- spend sheet -----------------------------------------------------------------------------------
    def _spend_rows(self, ga4: Ga4Facts) -> tuple[list[SpendRow], list[tuple[int, str]]]:
        rng = self.rng
        months: list[dt.date] = []
        d = HISTORY_START
        while d <= LAST_DAY:
            months.append(d)
            d = dt.date(d.year + d.month // 12, d.month % 12 + 1, 1)
        # GA4 monthly Google Ads cost per campaign (the invoice rounds it up to the euro).
        ga4_month = ga4.day_dates().astype("datetime64[M]")
        camp_table = ga4.tables["sessionCampaignName"]
        rows: list[SpendRow] = []
        for month in months:
            end = dt.date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
            for campaign, (source, medium, base, run_months) in SPEND_PLAN.items():
                if run_months is not None and month.month not in run_months:
                    continue
                if base is None:
                    mask = (ga4_month == np.datetime64(month, "M")) & (
                        ga4.dims["sessionCampaignName"] == camp_table.index(campaign)
                    )
                    cents = int(ga4.metrics["advertiserAdCost"][mask].sum())
                    amount = Decimal(-(-cents // 100))
                else:
                    wobble = Decimal(int(rng.integers(85, 116))) / Decimal(100)
                    amount = base * self.scale * wobble
                currency = SPEND_CURRENCY.get(campaign, HOME_CURRENCY)
                amount = (amount * 100 / RATE_TO_EUR_PCT[currency]).quantize(
                    Decimal("0.01"), rounding=ROUND_HALF_UP
                )
                if amount <= 0:
                    continue
                rows.append(
                    SpendRow(
                        month.isoformat(), end.isoformat(), source, medium, campaign, f"{amount}", currency
                    )
                )
        # Exactly five bad rows, each with one defect, at fixed places in the sheet.
        bad_specs = [
            (
                SpendRow(
                    "2025-07-01", "2025-07-31", "LinkedIn", "paid_social", "b2b_boutiques", "-120.00", "EUR"
                ),
                "negative amount",
            ),
            (
                SpendRow(
                    "2025-12-01", "2025-12-31", "facebook", "paid_social", "noel_cadeaux", "310.00", "EUX"
                ),
                "unknown currency 'EUX'",
            ),
            (
                SpendRow("2026-02-01", "2026-02-28", "newsletter", "email", "", "95.00", "EUR"),
                "missing campaign",
            ),
            (
                SpendRow(
                    "2026-13-01", "2026-13-31", "LinkedIn", "paid_social", "b2b_boutiques", "410.00", "EUR"
                ),
                "unparseable date '2026-13-01'",
            ),
            (
                SpendRow(
                    "2026-03-01",
                    "2026-03-31",
                    "salon_bijorhca",
                    "offline",
                    "salon_bijorhca",
                    "douze cents",
                    "EUR",
                ),
                "non-numeric amount 'douze cents'",
            ),
        ]
        positions = sorted({max(1, len(rows) * (i + 1) // 6) for i in range(5)})
        while len(positions) < 5:
            positions.append(positions[-1] + 1)
        out: list[SpendRow] = []
        bad: list[tuple[int, str]] = []
        it = iter(bad_specs)
        for i, row in enumerate(rows):
            while positions and positions[0] == i:
                positions.pop(0)
                spec, reason = next(it)
                out.append(spec)
                bad.append((len(out) + 1, reason))  # line 1 is the header
            out.append(row)
        for spec, reason in it:
            out.append(spec)
            bad.append((len(out) + 1, reason))
        out.append(SPEND_ROW_WITHOUT_RATE)
        return out, bad

    # -- load into the CRM store -----------------------------------------------------------------------
    def _load_crm(self, dataset: Dataset, contact_props, merged, archived_contacts, deals) -> dict[int, int]:
        """Fill the CRM store; returns original contact id -> id of the record a merge created for it."""
        crm = dataset.crm
        # how_did_you_hear_about_us is defined by the store with HubSpot's other default properties.
        crm.set_pipelines("deals", default_deal_pipelines())
        ids, props, create_ms, modified_ms = contact_props
        created = _datetimes(create_ms)
        updated = _datetimes(modified_ms)
        add = crm.add
        for i, cid in enumerate(ids.tolist()):
            add("contacts", cid, props[i], created[i], updated[i], archived=cid in archived_contacts)
        self._load_deals(crm, deals)
        # HubSpot's merge creates a new record (new id) holding both: the original is the primary.
        merged_into: dict[int, int] = {}
        for loser_id, _winner_id, p, dup_ms, merge_ms in merged:
            dup_at, merge_at = _datetimes(np.array([dup_ms, merge_ms]))
            add("contacts", loser_id, p, dup_at, merge_at)
        # All duplicates first: a merge's new id comes after every id the generator gave out.
        for loser_id, winner_id, _p, _dup_ms, merge_ms in merged:
            (merge_at,) = _datetimes(np.array([merge_ms]))
            merged_into[winner_id] = crm.merge("contacts", winner_id, loser_id, merge_at).id
        return merged_into

    def _load_deals(self, crm, d: dict[str, np.ndarray]) -> None:
        now_ms = int(DATA_SET_NOW.timestamp() * 1000)
        cur_names = list(DEAL_CURRENCY_WEIGHTS)
        stage_ids = {p: [s[0] for s in PIPELINES[p][1]] for p in PIPELINES}
        pipe_names = list(PIPELINES)
        modified_ms = np.minimum(
            np.maximum(d["create_ms"], np.where(d["closed"], d["close_ms"], 0)) + 3_600_000, now_ms
        )
        iso_create, iso_close, iso_mod = _iso(d["create_ms"]), _iso(d["close_ms"]), _iso(modified_ms)
        created, updated = _datetimes(d["create_ms"]), _datetimes(modified_ms)
        skus = list(PRODUCTS)
        # Everything the loop reads, as plain Python values.
        pipeline_l, won_l, closed_l = d["pipeline"].tolist(), d["won"].tolist(), d["closed"].tolist()
        open_l, cur_l, archived_l = d["open_stage"].tolist(), d["currency"].tolist(), d["archived"].tolist()
        # refunds are booked as negative deals; some won deals never got an amount (both rejected downstream)
        sign = np.where(d["refund"], -1, 1)
        amount_l = [_money(c) for c in (sign * d["amount_cents"]).tolist()]
        home_l = [_money(c) for c in (sign * d["home_cents"]).tolist()]
        no_amount_l = d["no_amount"].tolist()
        contact_l, items_l = d["contact"].tolist(), d["has_items"].tolist()
        qty_l, price_l, cost_l = d["qty"].tolist(), d["price"].tolist(), d["cost"].tolist()
        add, associate = crm.add, crm.associate
        line_id = LINE_ITEM_ID_START
        for i, deal_id in enumerate(d["id"].tolist()):
            pipe = pipe_names[pipeline_l[i]]
            stages = stage_ids[pipe]
            if won_l[i]:
                stage = stages[-2]
            elif closed_l[i]:
                stage = stages[-1]
            else:
                stage = stages[min(open_l[i], len(stages) - 3)]
            cur = cur_names[cur_l[i]]
            props = {
                "dealname": ("Revendeur" if pipe == "wholesale" else "Commande") + f" #{deal_id}",
                "amount": amount_l[i],
                "deal_currency_code": cur,
                "amount_in_home_currency": home_l[i],
                "dealstage": stage,
                "pipeline": pipe,
                "createdate": iso_create[i],
                "closedate": iso_close[i],
                "hs_lastmodifieddate": iso_mod[i],
                "hs_object_id": str(deal_id),
                "hs_is_closed_won": "true" if won_l[i] else "false",
                "hs_is_closed": "true" if closed_l[i] else "false",
            }
            if no_amount_l[i]:
                del props["amount"], props["amount_in_home_currency"]
            add("deals", deal_id, props, created[i], updated[i], archived=archived_l[i])
            associate("deals", deal_id, "contacts", contact_l[i], ASSOC_DEAL_TO_CONTACT)
            if not items_l[i]:
                continue
            for j, sku in enumerate(skus):
                q = qty_l[i][j]
                if q == 0:
                    continue
                price, cost = price_l[i][j], cost_l[i][j]
                item = {
                    "name": PRODUCTS[sku][0],
                    "hs_sku": sku,
                    "price": _money(price),
                    "quantity": str(q),
                    "amount": _money(price * q),
                    "hs_cost_of_goods_sold": _money(cost),
                    "hs_line_item_currency_code": cur,
                    "createdate": iso_create[i],
                    "hs_lastmodifieddate": iso_create[i],
                    "hs_object_id": str(line_id),
                }
                add("line_items", line_id, item, created[i], created[i])
                associate("deals", deal_id, "line_items", line_id, ASSOC_DEAL_TO_LINE_ITEM)
                line_id += 1

    # -- ground truth ----------------------------------------------------------------------------------
    def _ground_truth(self, ids, kind, archived_contacts, deals, spend_rows, bad_rows, ga4) -> dict:
        channel_of_kind = np.array([CHANNEL_IDS.index(k.channel) for k in TOUCH_KINDS])
        contact_channel = channel_of_kind[kind]
        # what the pipeline counts: live won deals, but not refunds nor deals without an amount (rejected)
        rejected = deals["won"] & ~deals["archived"] & (deals["refund"] | deals["no_amount"])
        counted = deals["won"] & ~deals["archived"] & ~rejected
        deal_channel = contact_channel[deals["contact"] - CONTACT_ID_START]
        revenue = np.bincount(deal_channel[counted], weights=None, minlength=len(CHANNEL_IDS))
        revenue_cents = [
            int(deals["home_cents"][counted & (deal_channel == c)].sum()) for c in range(len(CHANNEL_IDS))
        ]
        margin_1e4 = [
            int(deals["margin_1e4"][counted & (deal_channel == c)].sum()) for c in range(len(CHANNEL_IDS))
        ]
        del revenue
        bad_lines = {line for line, _ in bad_rows}
        spend: dict[str, Decimal] = {}
        without_rate = []
        campaign_channel = {k.campaign: k.channel for k in TOUCH_KINDS if k.campaign}
        for line, row in enumerate(spend_rows, start=2):
            if line in bad_lines:
                continue
            if row.currency not in RATE_TO_EUR_PCT:
                without_rate.append({"line": line, "currency": row.currency})
                continue
            # every good row covers one calendar month: converted once, half-up to the cent
            eur = (Decimal(row.amount) * RATE_TO_EUR_PCT[row.currency] / 100).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
            ch = campaign_channel[row.campaign]
            spend[ch] = spend.get(ch, Decimal("0.00")) + eur
        camp_table = ga4.tables["sessionCampaignName"]
        ga4_cost = {}
        for campaign in CPC_CENTS:
            mask = ga4.dims["sessionCampaignName"] == camp_table.index(campaign)
            ch = campaign_channel[campaign]
            ga4_cost[ch] = ga4_cost.get(ch, 0) + int(ga4.metrics["advertiserAdCost"][mask].sum())
        expected = {ch: _money(ga4_cost[ch]) if ch in ga4_cost else str(v) for ch, v in spend.items()}
        for ch, cents in ga4_cost.items():
            expected.setdefault(ch, _money(cents))
        active = len(ids) - len(archived_contacts)
        return {
            "seed": self.seed,
            "contacts": active,
            "now": DATA_SET_NOW.isoformat().replace("+00:00", "Z"),
            "home_currency": HOME_CURRENCY,
            "rates_to_eur": {c: f"{Decimal(p) / Decimal(100):.2f}" for c, p in RATE_TO_EUR_PCT.items()},
            "margin_rates": {p: str(r) for p, r in MARGIN_RATES.items()},
            "won_deals_by_first_touch_channel": {
                CHANNEL_IDS[c]: int((counted & (deal_channel == c)).sum()) for c in range(len(CHANNEL_IDS))
            },
            "won_revenue_by_first_touch_channel": {
                CHANNEL_IDS[c]: _money(revenue_cents[c]) for c in range(len(CHANNEL_IDS))
            },
            "gross_margin_by_first_touch_channel": {
                CHANNEL_IDS[c]: _money_1e4(margin_1e4[c]) for c in range(len(CHANNEL_IDS))
            },
            "spend_file_total_by_channel": {ch: str(v) for ch, v in sorted(spend.items())},
            "ga4_ad_cost_by_channel": {ch: _money(c) for ch, c in sorted(ga4_cost.items())},
            "expected_cost_by_channel": dict(sorted(expected.items())),
            "spend_file_bad_rows": [{"line": line, "reason": reason} for line, reason in bad_rows],
            "spend_rows_without_rate": without_rate,
            "rejected_won_deals": [
                {"deal_id": int(i), "reason": "negative amount" if r else "missing amount"}
                for i, r in zip(
                    deals["id"][rejected].tolist(), deals["refund"][rejected].tolist(), strict=True
                )
            ],
            "largest_won_deal_eur": _money(int(deals["home_cents"][counted].max(initial=0))),
        }


# ---------------------------------------------------------------------------------------------------------
# Module-level helpers used by the builder
# ---------------------------------------------------------------------------------------------------------
def _kind_index(name: str) -> int:
    return next(i for i, k in enumerate(TOUCH_KINDS) if k.name == name)


def _datetimes(ms: np.ndarray) -> list[dt.datetime]:
    """Epoch milliseconds -> aware UTC datetimes (what CrmStore.add takes)."""
    epoch, ms_delta = dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.timedelta(milliseconds=1)
    return [epoch + m * ms_delta for m in ms.tolist()]


_SEARCH = {"google", "bing", "qwant", "duckduckgo"}
_SOCIAL = {
    "facebook",
    "fb",
    "facebook.com",
    "m.facebook.com",
    "instagram",
    "ig",
    "linkedin",
    "lnkd.in",
    "linkedin.com",
    "pinterest",
}


def _ga4_channel_group(source: str, medium: str, campaign: str) -> str:
    """A simplified copy of GA4's default channel grouping (case-insensitive, first match wins)."""
    s, m = source.strip().lower(), medium.strip().lower()
    paid = m in {"ppc", "retargeting"} or "cp" in m or m.startswith("paid")
    if s == "(direct)" and m in {"(none)", "(not set)"}:
        return "Direct"
    if s in _SEARCH and paid:
        return "Paid Search"
    if s in _SOCIAL and paid:
        return "Paid Social"
    if paid:
        return "Paid Other"
    if s in _SOCIAL or m in {"social", "social-network", "social-media", "sm"}:
        return "Organic Social"
    if s in _SEARCH or m == "organic":
        return "Organic Search"
    if m == "referral":
        return "Referral"
    if s in {"email", "e-mail", "e_mail", "e mail"} or m in {"email", "e-mail", "e_mail", "e mail"}:
        return "Email"
    if m == "affiliate":
        return "Affiliates"
    return "Unassigned"
