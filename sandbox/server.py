"""SandboxServer: the whole sandbox (HubSpot + GA4 stand-ins) on 127.0.0.1 in a background thread.

    with SandboxServer(contacts=2_000, seed=7) as sb:
        HubSpot(access_token=sb.access_token, host=sb.base_url)

Ready before __enter__ returns; stopped (port released) on __exit__.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import uvicorn

from sandbox.churn import Churn
from sandbox.faults import Faults, parse_fault_spec
from sandbox.ratelimits import DEFAULT_PORTAL_TIME_ZONE, RateLimiter
from sandbox.requestlog import RequestLog
from sandbox.store import CrmStore

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 20.0
SHUTDOWN_TIMEOUT_S = 10.0
DEFAULT_GA4_PROPERTY_ID = "123456789"
SPEND_FILE_NAME = "spend.csv"
GROUND_TRUTH_FILE_NAME = "ground_truth.json"

log = logging.getLogger(__name__)


class _EmptyDataset:
    """Stand-in when the generator is not installed: a CRM store with HubSpot's default schema only."""

    def __init__(self) -> None:
        self.crm = CrmStore()
        self.ga4_property_id = DEFAULT_GA4_PROPERTY_ID


def build_dataset(contacts: int, seed: int) -> Any:
    """The generated data set (sandbox.generator), or an empty CRM when the generator is unavailable."""
    try:
        from sandbox.generator import generate
    except ImportError as exc:
        log.warning("sandbox.generator not available (%s): serving an empty CRM", exc)
        return _EmptyDataset()
    return generate(contacts=contacts, seed=seed)


class SandboxServer:
    """uvicorn serving sandbox.app on a free (or given) port of 127.0.0.1, in a daemon thread."""

    def __init__(
        self,
        contacts: int = 2_000,
        seed: int = 7,
        tier: str = "professional",
        rate_limits: bool = True,
        faults: Faults | str | None = None,
        out_dir: str | Path | None = None,
        port: int = 0,
        dataset: Any = None,
        access_token: str | None = None,
        daily_limit: int | None = None,
        *,
        api_limit_increase: bool = False,
        portal_time_zone: str = DEFAULT_PORTAL_TIME_ZONE,
        search_lag_seconds: float | None = None,
        churn: float | None = None,
        churn_seed: int = 1,
        token_scopes: Iterable[str] | None = None,
        ga4_contact_dimension: bool = True,
        ga4_restrictions: Any = None,
        company_currency: str | None = None,
    ) -> None:
        """``search_lag_seconds``: up to how long before search sees a write (HubSpot's index lags; None
        keeps the store's setting). ``churn``:
        writes per second of a background writer (sandbox.churn) started with the server; None = off.
        ``token_scopes``: the private app's scopes (default: all of sandbox.hubspot_api.ALL_SCOPES).
        ``ga4_contact_dimension=False``: a GA4 property where the CRM contact dimension is not registered.
        ``ga4_restrictions``: a ``sandbox.dataset.Ga4Restrictions`` for the GA4 property (Google Ads link,
        thresholding, ``(other)``); None keeps the data set's (all on by default). ``company_currency``: the
        portal's (account-info; EUR by default)."""
        self.token_scopes = None if token_scopes is None else tuple(token_scopes)
        self.contacts = contacts
        self.seed = seed
        self.tier = tier
        self.dataset = dataset if dataset is not None else build_dataset(contacts, seed)
        if search_lag_seconds is not None:
            self.store.search_lag_seconds = search_lag_seconds
        if company_currency is not None:
            self.store.company_currency = company_currency
        if not ga4_contact_dimension:
            self.dataset.ga4_contact_dimension_registered = False
        if ga4_restrictions is not None:
            self.dataset.ga4_restrictions = ga4_restrictions
        # A fresh random token per server: tests must take it from here, never hard-code it.
        self.access_token = access_token or f"pat-sandbox-{secrets.token_hex(12)}"
        self.rate_limiter = RateLimiter(
            tier=tier,
            enabled=rate_limits,
            daily_limit=daily_limit,
            api_limit_increase=api_limit_increase,
            time_zone=portal_time_zone,
        )
        # Called before every HubSpot list or search page is served: tests write "between pages" here.
        self.page_hooks: list[Callable[[], None]] = []
        self.churn: Churn | None = None
        if churn is not None:
            self.churn = Churn(self.store, rate=churn, seed=churn_seed)
        if isinstance(faults, str):
            self.faults = Faults()
            self.faults.configure(**parse_fault_spec(faults))
        else:
            self.faults = faults or Faults()
        self.request_log = RequestLog()
        self._requested_port = port
        self._out_dir_arg = Path(out_dir) if out_dir is not None else None
        self._tempdir: tempfile.TemporaryDirectory | None = None
        self.out_dir: Path | None = None
        self.written_files: list[Path] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    # ------------------------------------------------------------------------------------- properties
    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("SandboxServer is not running: use it as a context manager or call start()")
        return f"http://{HOST}:{self.port}"

    @property
    def store(self) -> CrmStore:
        return self.dataset.crm

    @property
    def ga4_property_id(self) -> str:
        return str(getattr(self.dataset, "ga4_property_id", DEFAULT_GA4_PROPERTY_ID))

    @property
    def rate_limits(self) -> bool:
        return self.rate_limiter.enabled

    @rate_limits.setter
    def rate_limits(self, enabled: bool) -> None:
        self.rate_limiter.enabled = enabled
        self.rate_limiter.reset()

    # ------------------------------------------------------------------------------------- lifecycle
    def start(self) -> SandboxServer:
        from sandbox.app import create_app

        self._write_files()
        app = create_app(
            self.store,
            self.access_token,
            dataset=self.dataset,
            rate_limiter=self.rate_limiter,
            faults=self.faults,
            request_log=self.request_log,
            churn=self.churn,
            page_hooks=self.page_hooks,
            token_scopes=self.token_scopes,
        )
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose listening socket
        # says TCP explicitly; without it every answer (headers, then body) waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self._requested_port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30, backlog=512
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox server did not start on {HOST}:{self.port}")
            time.sleep(0.01)
        if self.churn is not None:
            self.churn.start()
        return self

    def stop(self) -> None:
        if self.churn is not None:
            self.churn.stop()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(SHUTDOWN_TIMEOUT_S)
        self._server = self._thread = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_files(self) -> None:
        """spend.csv and ground_truth.json from the generated data set, when it can write them."""
        if self._out_dir_arg is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="roi-sandbox-")
            self.out_dir = Path(self._tempdir.name)
        else:
            self.out_dir = self._out_dir_arg
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.written_files = []
        writers = (("write_spend_csv", SPEND_FILE_NAME), ("write_ground_truth", GROUND_TRUTH_FILE_NAME))
        for method, file_name in writers:
            write = getattr(self.dataset, method, None)
            if write is not None:
                self.written_files.append(Path(write(self.out_dir / file_name)))
        with contextlib.suppress(FileNotFoundError):
            contacts_csv = self.out_dir / "ground_truth_contacts.csv"
            if contacts_csv.exists():
                self.written_files.append(contacts_csv)
