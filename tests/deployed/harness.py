"""The ONE harness for deployed runs: a real Prefect server, process workers, the deployments of prefect.yaml.

    server = PrefectServer.start(tmp / "prefect")          # `prefect server start`, ~15 s, once per session
    deployed = Deployment(server)                          # work pool + `prefect --no-prompt deploy --all`
    deployed.deploy()
    with deployed.workers(2, env={...}):                   # `prefect worker start --pool roi-process` x 2
        run = deployed.run("nightly/nightly", {"today": "2026-10-31"}, env=sandbox_env(sb, database=db))
        assert run.state_type == "COMPLETED", deployed.logs(run.id)
    server.stop()

Everything is a subprocess started here and stopped here by its own process group (workers before the
server: a worker whose server went away can hang on SIGTERM). Nothing is mocked: runs go through the server's
orchestration (concurrency limits, states), a worker polls them, and each flow run is a fresh Python process
in the repository checkout (the pull step `set_working_directory: {{ $ROI_HOME }}`), as in production.

Environment of a flow run = the worker's environment + the run's job variables (``env=`` of ``start``/
``run``). Sandbox tokens may travel in job variables (they are throwaway values); real secrets never do
(roi.toml names a variable or a Prefect Secret block; see ``save_secret``).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
ROI = str(Path(sys.executable).with_name("roi"))
WORK_POOL = "roi-process"
SERVER_START_TIMEOUT_S = 120.0
COMMAND_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 15.0
SERVE_TIMEOUT_S = 300.0  # generating a large sandbox data set on a busy machine
POLL_SECONDS = 0.5
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})

_QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_UI_ENABLED": "false",
}
# Workers look for work every second instead of every 10 s (a run would otherwise wait up to 10 s to start).
_FAST_WORKER = {
    "PREFECT_WORKER_QUERY_SECONDS": "1",
    "PREFECT_WORKER_PREFETCH_SECONDS": "5",
    "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _is_setting(name: str) -> bool:
    """A variable the pipeline's settings read (HUBSPOT_ACCESS_TOKEN, ROI_DATABASE, MODELS__..., tokens)."""
    from connectors.config import Settings, settings_variables

    upper = name.upper()
    sections = tuple(f"{section.upper()}__" for section in Settings.model_fields)
    return upper in settings_variables() or upper.startswith(("HUBSPOT", "GA4", "ROI_", *sections))


def base_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any pipeline or Prefect setting, plus ``extra``: settings of
    the machine or of the test process never leak into a server, worker or flow run; each run says what it
    uses."""
    env = {k: v for k, v in os.environ.items() if not _is_setting(k) and not k.startswith("PREFECT_")}
    env.update(_QUIET)
    env.update(extra or {})
    return env


def _stop(process: subprocess.Popen, *, name: str) -> None:
    """SIGTERM the process group this harness started, then SIGKILL what is left after STOP_TIMEOUT_S."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_S)


def serve_sandbox(
    out: Path, *, contacts: int = 150, seed: int = 4, timeout: float = SERVE_TIMEOUT_S
) -> tuple[subprocess.Popen, dict[str, str], date]:
    """`roi sandbox serve --print-env` in its own process group (stop it with ``stop_process``): the
    process, the variables it exports (token, URLs, property, spend file, warehouse, models) and the
    sandbox's today."""
    arguments = ["--port", "0", "--contacts", str(contacts), "--seed", str(seed), "--out", str(out)]
    process = subprocess.Popen(
        [ROI, "sandbox", "serve", *arguments, "--print-env"],
        cwd=ROOT,
        env=base_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    exports: dict[str, str] = {}
    today = None
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exports[name] = shlex.split(value)[0]
        elif "pass today=" in line:
            today = date.fromisoformat(line.rsplit("today=", 1)[1].split()[0])
        elif line.startswith("# end of environment") or time.monotonic() > deadline:
            break
    if today is None or "HUBSPOT_ACCESS_TOKEN" not in exports:
        stop_process(process)
        raise RuntimeError(f"the sandbox serving {out} did not print its environment")
    return process, exports, today


def stop_process(process: subprocess.Popen) -> None:
    """Stop a process group this harness started (SIGTERM, then SIGKILL)."""
    _stop(process, name="process")


@dataclass
class PrefectServer:
    """`prefect server start` on 127.0.0.1 with its own PREFECT_HOME (SQLite), no UI, no scheduler."""

    home: Path
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a Prefect client process (CLI, worker) talking to this server."""
        return base_environment(
            {"PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.home), **(extra or {})}
        )

    @classmethod
    def start(cls, home: Path, *, timeout: float = SERVER_START_TIMEOUT_S) -> PrefectServer:
        home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log_path = home / "server.log"
        env = base_environment(
            {
                "PREFECT_HOME": str(home),
                # No scheduler: a deployment's cron must not start runs in the middle of a test session; no
                # late-runs service either (runs are started by the tests, never late on purpose).
                "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
                "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
            }
        )
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = cls(home, port, process, log_path)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"prefect server exited with {process.returncode}:\n{server.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.api_url}/health", timeout=2).status_code == 200:
                    return server
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"prefect server not healthy after {timeout:.0f} s:\n{server.log_tail()}")
            time.sleep(0.25)

    def stop(self) -> None:
        _stop(self.process, name="prefect server")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass(frozen=True)
class RunOutcome:
    """A finished (or timed out) flow run as the server sees it."""

    id: UUID
    name: str
    deployment: str
    state_type: str  # COMPLETED | FAILED | CRASHED | CANCELLED | ... (not final when the wait timed out)
    state_name: str
    message: str
    parameters: dict[str, Any]
    tags: tuple[str, ...]
    seconds: float | None  # total run time as the server counts it
    created: datetime | None  # when the run was created (scheduled)
    started: datetime | None  # when it entered Running (its process was up)
    ended: datetime | None

    @property
    def completed(self) -> bool:
        return self.state_type == "COMPLETED"


class Deployment:
    """The repository's prefect.yaml deployed on ``server``, its process workers, and runs of it."""

    def __init__(self, server: PrefectServer, root: Path = ROOT) -> None:
        self.server = server
        self.root = root
        self._workers: list[tuple[subprocess.Popen, Path]] = []

    # -- setup --------------------------------------------------------------------------------------------

    def cli(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """Run the prefect CLI against the server from the repository root; its output, or RuntimeError."""
        done = subprocess.run(
            [PREFECT, "--no-prompt", *args],
            cwd=self.root,
            env=self.server.env({"ROI_HOME": str(self.root), **(env or {})}),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"prefect {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def deploy(self) -> list[str]:
        """Create the process work pool and deploy every deployment of prefect.yaml; their full names."""
        self.cli("work-pool", "create", WORK_POOL, "--type", "process", "--overwrite")
        self.cli("deploy", "--all")
        with self.client() as client:
            return sorted(f"{client.read_flow(d.flow_id).name}/{d.name}" for d in client.read_deployments())

    @contextlib.contextmanager
    def workers(self, count: int = 2, *, env: Mapping[str, str] | None = None) -> Iterator[list[Path]]:
        """``count`` process workers polling the pool; yields their log files; stops them on exit.

        ``env`` is added to each worker's environment, hence to every flow run it starts (e.g. the variable a
        portal's ``token_env`` names).
        """
        started = []
        try:
            for index in range(count):
                log_path = self.server.home / f"worker-{len(self._workers) + index + 1}.log"
                with open(log_path, "ab") as log:
                    process = subprocess.Popen(
                        [
                            PREFECT,
                            "worker",
                            "start",
                            "--pool",
                            WORK_POOL,
                            "--name",
                            log_path.stem,
                            "--type",
                            "process",
                        ],
                        cwd=self.root,
                        env=self.server.env({"ROI_HOME": str(self.root), **_FAST_WORKER, **(env or {})}),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                started.append((process, log_path))
            self._workers.extend(started)
            yield [path for _, path in started]
        finally:
            for process, _ in started:
                _stop(process, name="prefect worker")
            self._workers = [w for w in self._workers if w not in started]

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        """A sync Prefect client of this server (the test process's own settings are left alone)."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with (
            temporary_settings(updates={PREFECT_API_URL: self.server.api_url}),
            get_client(sync_client=True) as c,
        ):
            yield c

    @contextlib.contextmanager
    def as_api(self) -> Iterator[None]:
        """Flows called in the test process inside this block run against this server (not an ephemeral)."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.server.api_url}):
            yield

    def save_secret(self, name: str, value: str) -> None:
        """A Prefect Secret block on the server (what a portal's ``token_secret`` names)."""
        from prefect.blocks.system import Secret

        with self.as_api():
            Secret(value=value).save(name, overwrite=True)

    # -- runs ---------------------------------------------------------------------------------------------

    def start(
        self,
        deployment: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        tags: Sequence[str] = (),
        name: str | None = None,
    ) -> UUID:
        """Create a run of ``deployment`` ("flow/deployment") now; ``env`` goes in its job variables."""
        with self.client() as client:
            target = client.read_deployment_by_name(deployment)
            run = client.create_flow_run_from_deployment(
                target.id,
                parameters=dict(parameters or {}),
                tags=list(tags),
                name=name,
                job_variables={"env": dict(env)} if env else None,
            )
        return run.id

    def wait(self, run_ids: Sequence[UUID], *, timeout: float = 300.0) -> list[RunOutcome]:
        """Wait until every run is in a final state (or ``timeout``); their outcomes, in the order given."""
        deadline = time.monotonic() + timeout
        pending = list(run_ids)
        while pending and time.monotonic() < deadline:
            with self.client() as client:
                pending = [r for r in pending if client.read_flow_run(r).state_type.value not in FINAL_STATES]
            if pending:
                time.sleep(POLL_SECONDS)
        return [self.outcome(r) for r in run_ids]

    def run(
        self,
        deployment: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 300.0,
        tags: Sequence[str] = (),
    ) -> RunOutcome:
        """Start a run of ``deployment`` and wait for it (workers must be running: see ``workers``)."""
        (outcome,) = self.wait([self.start(deployment, parameters, env=env, tags=tags)], timeout=timeout)
        return outcome

    def outcome(self, run_id: UUID) -> RunOutcome:
        with self.client() as client:
            run = client.read_flow_run(run_id)
            deployment = ""
            if run.deployment_id:
                target = client.read_deployment(run.deployment_id)
                deployment = f"{client.read_flow(target.flow_id).name}/{target.name}"
        return RunOutcome(
            id=run.id,
            name=run.name,
            deployment=deployment,
            state_type=run.state_type.value if run.state_type else "",
            state_name=run.state_name or "",
            message=(run.state.message or "") if run.state else "",
            parameters=dict(run.parameters or {}),
            tags=tuple(run.tags or ()),
            seconds=run.total_run_time.total_seconds() if run.total_run_time else None,
            created=run.created,
            started=run.start_time,
            ended=run.end_time,
        )

    def child_runs(self, parent_id: UUID) -> list[RunOutcome]:
        """Flow runs started from inside ``parent_id`` (run_deployment(as_subflow=True) or subflow calls)."""
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

        with self.client() as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])
                )
            )
        return [self.outcome(r.id) for r in runs]

    def logs(self, run_id: UUID, *, limit: int = 200) -> str:
        """The run's log lines (for assertion messages: why did it fail?)."""
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        with self.client() as client:
            entries = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=limit
            )
        return "\n".join(f"{e.level:>2} {e.name}: {e.message}" for e in entries)

    def worker_logs(self, lines: int = 60) -> str:
        tails = []
        for _, path in self._workers:
            with contextlib.suppress(OSError):
                tails.append(
                    f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(tails)
