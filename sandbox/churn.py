"""Churn mode: a background writer that keeps changing the CRM while the pipeline reads it.

Production portals never hold still: people sign up, workflows rewrite contacts, sales reps move deals between
stages, records are deleted (archived), purged after the retention period or by a GDPR request, and
duplicates are merged (a merge makes a NEW record). ``Churn`` does all of that to a ``CrmStore`` at random
moments: ``rate`` writes per second on a background thread (Poisson arrivals), plus, with probability
``mid_read``, one write just before a list or search page is served, so writes land between the pages of a
read. Run it with the store's ``search_lag_seconds`` on to get HubSpot's lagging search index as well.

    churn = Churn(server.store, rate=20, seed=3)
    churn.start()      # SandboxServer(churn=20) does this itself; `roi sandbox serve --churn 20` too
    ...
    churn.stop()       # writes stop; churn.counts says what was done
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from sandbox.store import (
    ANALYTICS_SOURCE_OPTIONS,
    LIFECYCLE_STAGES,
    SANDBOX_PIPELINES,
    CrmStore,
    format_hubspot_datetime,
)

log = logging.getLogger(__name__)

# Relative weights of the writes (a realistic day: mostly updates, some sign-ups, few deletions and merges).
DEFAULT_MIX: dict[str, float] = {
    "create_contact": 8,
    "update_contact": 30,
    "archive_contact": 3,
    "restore_contact": 1,
    "purge_archived_contact": 1,
    "gdpr_delete_contact": 1,
    "merge_contacts": 3,
    "create_deal": 6,
    "move_deal_stage": 20,
    "update_deal_amount": 6,
    "archive_deal": 2,
    "restore_deal": 1,
    "purge_archived_deal": 1,
    "merge_deals": 2,
}
DEFAULT_MID_READ = 0.25  # chance of a write just before a list or search page is served
FIRST_NAMES = ("Camille", "Léa", "Hugo", "Louis", "Inès", "Jules", "Chloé", "Arthur", "Zoé", "Nathan")
LAST_NAMES = ("Martin", "Bernard", "Dubois", "Petit", "Durand", "Leroy", "Moreau", "Girard", "Roux", "Morel")
SOURCES = tuple(o["value"] for o in ANALYTICS_SOURCE_OPTIONS)


class Churn:
    """Random writes to ``store`` (thread-safe; the store's lock serialises them with API reads)."""

    def __init__(
        self,
        store: CrmStore,
        rate: float,
        seed: int = 1,
        *,
        mid_read: float = DEFAULT_MID_READ,
        mix: dict[str, float] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if rate < 0 or not 0 <= mid_read <= 1:
            raise ValueError(f"churn rate must be >= 0 and mid_read in [0, 1], got {rate}, {mid_read}")
        self.store = store
        self.rate = rate
        self.mid_read = mid_read
        self._rng = random.Random(seed)
        self._mix = dict(mix or DEFAULT_MIX)
        unknown = set(self._mix) - set(DEFAULT_MIX)
        if unknown:
            raise ValueError(f"unknown churn actions {sorted(unknown)}: use {', '.join(DEFAULT_MIX)}")
        self._actions = list(self._mix)
        self._weights = [self._mix[a] for a in self._actions]
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.counts: Counter[str] = Counter()
        self.writing = False

    # -------------------------------------------------------------------------------- lifecycle
    def start(self) -> Churn:
        if self._thread is not None:
            return self
        self._stop.clear()
        self.writing = True
        if self.rate > 0:
            self._thread = threading.Thread(target=self._run, name="sandbox-churn", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """No write after this returns (background or mid-read)."""
        self._stop.set()
        with self._lock:
            self.writing = False
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._rng_expovariate()):
            self.write_once()

    def _rng_expovariate(self) -> float:
        with self._lock:
            return self._rng.expovariate(self.rate)

    def between_pages(self) -> None:
        """Hook of the HubSpot stand-in, called before a list or search page is served."""
        if not self.writing:
            return
        with self._lock:
            go = self._rng.random() < self.mid_read
        if go:
            self.write_once()

    # ---------------------------------------------------------------------------------- writes
    def write_once(self) -> str | None:
        """One random write; returns what was done (None when the pick found nothing to act on)."""
        with self._lock:
            if not self.writing:
                return None
            action = self._rng.choices(self._actions, self._weights)[0]
            try:
                done = getattr(self, f"_{action}")(self._rng, self._clock())
            except KeyError:  # the record changed under us (another writer): nothing done
                done = False
            if done:
                self.counts[action] += 1
                return action
            return None

    def _create_contact(self, rng: random.Random, now: datetime) -> bool:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        stamp = format_hubspot_datetime(now)
        self.store.create(
            "contacts",
            {
                "email": f"{first}.{last}.{rng.randrange(10**9)}@exemple.fr".lower(),
                "firstname": first,
                "lastname": last,
                "lifecyclestage": "lead",
                "hs_lifecyclestage_lead_date": stamp,
                "hs_analytics_source": rng.choice(SOURCES),
                "hs_analytics_first_timestamp": stamp,
                "hs_latest_source": rng.choice(SOURCES),
                "hs_latest_source_timestamp": stamp,
            },
            now,
        )
        return True

    def _update_contact(self, rng: random.Random, now: datetime) -> bool:
        contact = self.store.pick("contacts", rng)
        if contact is None:
            return False
        stage = rng.choice(LIFECYCLE_STAGES[:6])[0]
        changes = {"lifecyclestage": stage, "hs_latest_source": rng.choice(SOURCES)}
        changes["hs_latest_source_timestamp"] = format_hubspot_datetime(now)
        self.store.update("contacts", contact, changes, at=now)
        return True

    def _archive(self, object_type: str, rng: random.Random, now: datetime) -> bool:
        record_id = self.store.pick(object_type, rng)
        if record_id is None:
            return False
        self.store.archive(object_type, record_id, now)
        return True

    def _restore(self, object_type: str, rng: random.Random, now: datetime) -> bool:
        record_id = self.store.pick(object_type, rng, archived=True)
        if record_id is None:
            return False
        self.store.restore(object_type, record_id, now)
        return True

    def _purge_archived(self, object_type: str, rng: random.Random) -> bool:
        record_id = self.store.pick(object_type, rng, archived=True)
        if record_id is None:
            return False
        self.store.purge(object_type, record_id)
        return True

    def _merge(self, object_type: str, rng: random.Random, now: datetime) -> bool:
        first, second = self.store.pick(object_type, rng), self.store.pick(object_type, rng)
        if first is None or second is None or first == second:
            return False
        self.store.merge(object_type, first, second, now)
        return True

    def _archive_contact(self, rng: random.Random, now: datetime) -> bool:
        return self._archive("contacts", rng, now)

    def _restore_contact(self, rng: random.Random, now: datetime) -> bool:
        return self._restore("contacts", rng, now)

    def _purge_archived_contact(self, rng: random.Random, now: datetime) -> bool:
        return self._purge_archived("contacts", rng)

    def _gdpr_delete_contact(self, rng: random.Random, now: datetime) -> bool:
        contact = self.store.pick("contacts", rng)
        if contact is None:
            return False
        self.store.purge("contacts", contact)  # at once: never on the archived list
        return True

    def _merge_contacts(self, rng: random.Random, now: datetime) -> bool:
        return self._merge("contacts", rng, now)

    def _create_deal(self, rng: random.Random, now: datetime) -> bool:
        contact = self.store.pick("contacts", rng)
        if contact is None:
            return False
        pipeline = rng.choice(list(SANDBOX_PIPELINES))
        stage = rng.choice(SANDBOX_PIPELINES[pipeline][1])[0]
        amount = f"{Decimal(rng.randrange(1_000, 5_000_000)) / 100:.2f}"
        props = {
            "dealname": f"Commande churn {rng.randrange(10**6)}",
            "amount": amount,
            "deal_currency_code": "EUR",
            "amount_in_home_currency": amount,
            "dealstage": stage,
            "pipeline": pipeline,
            "closedate": format_hubspot_datetime(now),
            **self.store.deal_stage_fields(stage),
        }
        deal = self.store.create("deals", props, now)
        self.store.associate("deals", deal.id, "contacts", contact, 3)
        quantity = rng.randrange(1, 5)
        price = Decimal(amount) / quantity
        item = self.store.create(
            "line_items",
            {
                "name": "Bougie classique",
                "hs_sku": "BOUGIE-CLASSIQUE",
                "price": f"{price:.4f}",
                "quantity": str(quantity),
                "amount": amount,
                "hs_cost_of_goods_sold": f"{price / 2:.4f}",
                "hs_line_item_currency_code": "EUR",
            },
            now,
        )
        self.store.associate("deals", deal.id, "line_items", item.id, 19)
        return True

    def _move_deal_stage(self, rng: random.Random, now: datetime) -> bool:
        deal_id = self.store.pick("deals", rng)
        deal = self.store.get("deals", deal_id) if deal_id is not None else None
        if deal is None:
            return False
        pipeline = deal.properties.get("pipeline") or "default"
        stages = [s[0] for s in SANDBOX_PIPELINES.get(pipeline, SANDBOX_PIPELINES["default"])[1]]
        stage = rng.choice(stages)
        changes = {"dealstage": stage, **self.store.deal_stage_fields(stage)}
        if changes.get("hs_is_closed") == "true":
            changes["closedate"] = format_hubspot_datetime(now)
        self.store.update("deals", deal.id, changes, at=now)
        return True

    def _update_deal_amount(self, rng: random.Random, now: datetime) -> bool:
        deal_id = self.store.pick("deals", rng)
        deal = self.store.get("deals", deal_id) if deal_id is not None else None
        if deal is None or deal.properties.get("deal_currency_code") != "EUR":
            return False  # other currencies would need the exchange rate of the home amount
        amount = f"{Decimal(rng.randrange(1_000, 5_000_000)) / 100:.2f}"
        self.store.update("deals", deal.id, {"amount": amount, "amount_in_home_currency": amount}, at=now)
        return True

    def _archive_deal(self, rng: random.Random, now: datetime) -> bool:
        return self._archive("deals", rng, now)

    def _restore_deal(self, rng: random.Random, now: datetime) -> bool:
        return self._restore("deals", rng, now)

    def _purge_archived_deal(self, rng: random.Random, now: datetime) -> bool:
        return self._purge_archived("deals", rng)

    def _merge_deals(self, rng: random.Random, now: datetime) -> bool:
        return self._merge("deals", rng, now)
