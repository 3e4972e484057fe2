"""The CLI's frame: how every `roi` command fails, which target it runs against, and `--debug`.

Every command registered on a ``RoiTyper`` runs inside ``cli_errors()``: an expected failure
(``connectors.errors.RoiError`` and its subclasses, plus the foreign exceptions ``translate`` knows) prints
ONE line, ``error: <cause>. Fix: <fix>``, and exits with the error's code; anything else is reported as a bug
in one line too. ``--debug`` (anywhere on the command line, or ROI_DEBUG=1) adds the traceback and Prefect's
own task tracebacks. Warehouse connections are closed before the process exits, so DuckDB never reports
leaked instances at shutdown.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import logging
import os
import sys
import traceback
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape

from connectors.errors import EXIT_BUSY, EXIT_CONFIG, EXIT_STEP_FAILED, RoiError, UsageError

err_console = Console(stderr=True)
EXIT_INTERRUPTED = 130
DEBUG_ENV = "ROI_DEBUG"


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")


def set_debug(enabled: bool) -> None:
    if enabled:
        os.environ[DEBUG_ENV] = "1"
    install_prefect_traceback_filter()


# ----------------------------------------------------------------------------------------------------------
# Turning exceptions into one line.


def _redact(text: str) -> str:
    from connectors.config import redact

    return redact(text)


def print_error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(_redact(message))}", highlight=False, soft_wrap=True)


def fail(message: str, code: int) -> typer.Exit:
    """Print ``error: message`` and return the Exit to raise: ``raise fail(...)``."""
    print_error(message)
    return typer.Exit(code)


def _status_of(exc: BaseException) -> int | None:
    for name in ("status", "status_code", "code"):
        value = getattr(exc, name, None)
        value = value() if callable(value) and name == "code" else value
        try:
            return int(value)
        except (TypeError, ValueError):
            continue
    return None


def translate(exc: BaseException) -> RoiError | None:
    """An expected failure raised by a library (DuckDB, the HubSpot SDK, Google's client, the OS) as our
    own error with its fix; None when we do not recognise it (a bug: it keeps its traceback for --debug)."""
    if isinstance(exc, RoiError):
        return exc
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    text = str(exc).splitlines()[0] if str(exc) else name
    if module.startswith("duckdb") or module.startswith("_duckdb"):
        if "lock" in str(exc).lower():
            error = RoiError(
                f"The warehouse is locked by another process ({text})",
                "wait for the running pipeline to finish, or pass --lock-wait SECONDS",
            )
            error.exit_code = EXIT_BUSY
            return error
        if "not a valid DuckDB" in str(exc) or "database file" in str(exc).lower():
            error = RoiError(
                f"The warehouse file cannot be opened: {text}", "point ROI_DATABASE at a DuckDB file"
            )
            error.exit_code = EXIT_CONFIG
            return error
        return None
    if isinstance(exc, UnicodeDecodeError):
        error = RoiError(f"A file is not UTF-8 ({exc.reason} at byte {exc.start})", "save it as UTF-8")
        error.exit_code = EXIT_CONFIG
        return error
    if isinstance(exc, OSError) and exc.filename and not module.startswith(("urllib3", "requests")):
        what = {
            IsADirectoryError: "is a folder, not a file",
            NotADirectoryError: "is not a folder",
            FileNotFoundError: "does not exist",
            PermissionError: "is not readable or writable by this user",
        }.get(type(exc), exc.strerror or "cannot be used")
        error = RoiError(f"{exc.filename} {what}", "fix the path or its permissions")
        error.exit_code = EXIT_CONFIG
        return error
    if name == "ApiException" and module.startswith("hubspot"):
        status = _status_of(exc)
        if status == 401:
            error = RoiError(
                "HubSpot refused the access token (401)", "check HUBSPOT_ACCESS_TOKEN (roi check)"
            )
            error.exit_code = EXIT_CONFIG
            return error
        if status == 403:
            error = RoiError(
                "HubSpot refused the call for lack of a scope (403)",
                "add the scopes listed by `roi check` to the private app",
            )
            error.exit_code = EXIT_CONFIG
            return error
        if status == 429:
            return RoiError(
                "HubSpot kept answering 429 (rate limit) after every retry",
                "run again later, or set hubspot_tier to your portal's tier (other apps share the limit)",
            )
        return RoiError(
            f"HubSpot answered {status} ({getattr(exc, 'reason', '') or text})", "run again later"
        )
    if module.startswith("google.api_core"):
        status = _status_of(exc)
        error = RoiError(
            f"GA4 refused the call ({name}: {text})", "check the property id and its access (roi check)"
        )
        error.exit_code = EXIT_CONFIG if status in (401, 403, 404) else EXIT_STEP_FAILED
        return error
    if module.startswith(("urllib3", "requests")) or isinstance(exc, ConnectionError):
        return RoiError(
            f"Cannot reach the API ({name}: {text})", "check the network and the base URL, then run again"
        )
    return None


@contextmanager
def cli_errors() -> Iterator[None]:
    """Every failure of a command as one line and its exit code; typer/click's own exits pass through."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException, click.exceptions.Exit, click.ClickException):
        raise  # Typer's own usage errors (exit 2) and exits
    except KeyboardInterrupt:
        raise fail("interrupted.", EXIT_INTERRUPTED) from None
    except Exception as exc:
        error = translate(exc)
        if debug_enabled():
            traceback.print_exception(exc, file=sys.stderr)
        if error is None:
            message = (
                f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
                "This is a bug: run the command again with --debug and report the traceback."
            )
            code = EXIT_STEP_FAILED
        else:
            message, code = error.message, error.exit_code
        del exc  # the traceback holds frames (and their DuckDB connections): let them go before exit
        release_connections()
        raise fail(message, code) from None


def release_connections() -> None:
    """Close every DuckDB connection still open in this process and drop what keeps them alive.

    A failed task's exception stays in its Prefect state until the process ends, and its traceback keeps
    the finished frames that held connections; at interpreter shutdown DuckDB's bindings would print one
    "nanobind: leaked instance" line per object still alive. Clearing the locals of the frames that
    tracebacks keep (their line numbers stay, so tracebacks still print) lets the connections go.
    """
    try:
        import duckdb
    except ImportError:  # pragma: no cover - duckdb is a dependency
        return
    gc.collect()
    for obj in gc.get_objects():
        if isinstance(obj, duckdb.DuckDBPyConnection):
            with contextlib.suppress(Exception):
                obj.close()
        elif isinstance(obj, types.TracebackType):
            traceback.clear_frames(obj)  # skips frames still executing
    gc.collect()


# ----------------------------------------------------------------------------------------------------------
# Prefect's console output: task and flow tracebacks only with --debug.


# Prefect's own lines about a failed task or flow: the CLI's final `error:` line already carries the cause.
ENGINE_FAILURE_LINES = (
    "Task run failed with exception",
    "Finished in state Failed",
    "Encountered exception during execution",
    # At exit, when a busy Prefect server did not take the last log lines in time: the terminal has them all,
    # and this line would come after the CLI's `error:` line, which must stay last.
    "Service 'APILogWorker' failed with",
)


class _DropTracebacks(logging.Filter):
    """Without --debug: drops the traceback Prefect attaches to failed tasks/flows, and Prefect's own
    repetition of the failure (our flows log what failed and why; the CLI prints the cause last)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if debug_enabled():
            return True
        if record.exc_info:
            record.exc_info = None
            record.exc_text = None
        message = record.getMessage()
        if message.startswith(ENGINE_FAILURE_LINES) or record.name.startswith("prefect._internal"):
            return False  # Prefect's own plumbing (log shipping at exit...): noise after our one line
        if "Traceback (most recent call last)" in message:
            record.msg, record.args = message.split("Traceback (most recent call last)")[0].rstrip(), None
        return True


def install_prefect_traceback_filter() -> None:
    """Attach the filter to Prefect's console handlers (idempotent; called once Prefect is configured)."""
    # prefect._internal does not propagate: it has its own handler (log shipping failures at exit go there).
    for logger_name in ("prefect", "prefect.flow_runs", "prefect.task_runs", "prefect._internal", ""):
        logger = logging.getLogger(logger_name)
        for handler in logger.handlers:
            if not any(isinstance(f, _DropTracebacks) for f in handler.filters):
                handler.addFilter(_DropTracebacks())


# ----------------------------------------------------------------------------------------------------------
# The Typer app every command is registered on: error handling and --debug come with registration.

DebugOption = Annotated[
    bool,
    typer.Option("--debug", help="Show tracebacks (Python's and Prefect's) when something fails."),
]


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run inside cli_errors(), with a ``--debug`` option added to its signature."""
    signature = inspect.signature(fn, eval_str=True)
    takes_debug = "debug" in signature.parameters

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        debug = kwargs["debug"] if takes_debug else kwargs.pop("debug", False)
        set_debug(debug or debug_enabled())
        try:
            with cli_errors():
                return fn(*args, **kwargs)
        finally:
            release_connections()

    if not takes_debug:
        debug = inspect.Parameter(
            "debug", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=DebugOption
        )
        params = list(signature.parameters.values())
        command.__signature__ = signature.replace(parameters=[*params, debug])  # type: ignore[attr-defined]
    else:
        command.__signature__ = signature  # type: ignore[attr-defined]
    return command


class RoiTyper(typer.Typer):
    """typer.Typer whose commands fail in one line (see cli_errors) and accept --debug."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            register(_guarded(fn))
            return fn

        return decorator


def parse_day(value: str | None, option: str) -> Any:
    """A YYYY-MM-DD option as a date; a UsageError (exit 2) naming the option otherwise."""
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        reason = "" if str(exc).startswith("Invalid isoformat") else f" ({exc})"
        raise UsageError(
            f"{option} {value!r} is not a date{reason}",
            f"write it as YYYY-MM-DD, e.g. {option} 2026-10-31",
        ) from None


def output_file(path: Path, *, suffix: str) -> Path:
    """A file path to write: refuses a folder (naming the file it would write there instead)."""
    if path.is_dir():
        raise UsageError(
            f"--output {path} is a folder", f"pass a file name, e.g. --output {path / ('roi' + suffix)}"
        )
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------------------------------------
# Which Prefect server flow commands use.

PREFECT_HEALTH_TIMEOUT_S = 5.0


def configured_prefect_api() -> str | None:
    """PREFECT_API_URL from the environment or the active Prefect profile; None: a throwaway server."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def prefect_target_label() -> str:
    url = configured_prefect_api()
    if url:
        return f"Prefect server {url}"
    return "throwaway local Prefect server, ~10 s to start; set PREFECT_API_URL to use a running one"


def check_prefect_server() -> None:
    """A configured Prefect server must answer before anything else runs (ConfigError otherwise)."""
    from connectors.config import ConfigError

    url = configured_prefect_api()
    if not url:
        return
    import httpx

    try:
        answer = httpx.get(url.rstrip("/") + "/health", timeout=PREFECT_HEALTH_TIMEOUT_S)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"PREFECT_API_URL is {url}, which does not answer ({type(exc).__name__})",
            "start it (`prefect server start --background`), or unset PREFECT_API_URL "
            "(`prefect config unset PREFECT_API_URL`) to run on a throwaway local server",
        ) from None
