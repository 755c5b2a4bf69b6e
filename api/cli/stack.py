"""`remediator dev`, `remediator worker` and `remediator api`: running Remediator's processes.

The worker and the API are imported inside the commands: every `remediator` command (`approve` too)
loads this module, and importing the worker's activities takes about a second.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from activities.config import Settings, get_settings
from worker.devserver import PortInUse

if TYPE_CHECKING:
    from worker.stack import StackInfo

app = typer.Typer()
PORT_OPTIONS = {"Temporal": "--temporal-port", "Temporal UI": "--ui-port", "API": "--api-port"}


def fail(message: str) -> NoReturn:
    typer.echo(f"remediator: {message}", err=True)
    raise typer.Exit(1)


def start_telemetry(settings: Settings, worker: bool) -> None:
    """Tracing from OTEL_*, and for a worker its metrics endpoint; a bad setting is one line."""
    from worker.telemetry import TelemetryError, install_worker_runtime, tracer_provider

    try:
        tracer_provider()
        if worker:
            install_worker_runtime(settings)
    except TelemetryError as err:
        fail(str(err))


def check_playbooks_and_policy(settings: Settings, credentials: bool = True) -> None:
    """Fail before anything starts; the API loads them again when it starts. With `credentials`,
    also refuse (one line) when nothing could authenticate a caller."""
    from api.auth.access import AccessError
    from api.auth.credentials import AuthConfigError, Authenticator
    from api.ingest import Pinning, PinningError

    try:
        Pinning.load(settings)
        authenticator = Authenticator(settings)  # validates the policy's `access:` section
        if credentials and not authenticator.disabled:  # disabled: the API warns when it starts
            authenticator.check()
    except (PinningError, AccessError, AuthConfigError) as err:
        fail(str(err))


def admin_key_banner(settings: Settings) -> str:
    """First start: a local admin key, shown this once. Later starts: where keys live."""
    from api.auth.keys import KeyStore, KeyStoreError
    from api.auth.principal import ANY, Role
    from api.cli.demo import DEV_ADMIN
    from api.cli.dev_console import remediator_command

    keys = KeyStore(settings.api_keys_path)
    try:
        if any(Role.ADMIN in r.roles for r in keys.active()):
            return (
                f"  API keys  {keys.path} (hashes only; a new admin key: "
                f"{remediator_command()} auth key create --name NAME --role admin)\n"
            )
        _, key = keys.create(DEV_ADMIN, [Role.ADMIN], environments=[ANY])
    except KeyStoreError as err:
        fail(str(err))
    return (
        f"  admin key {key}\n"
        f"            shown only now (stored as a hash in {keys.path}); to use it:\n"
        f"            export REMEDIATOR_API_KEY={key}\n"
    )


def run_then_exit(
    main: Coroutine[Any, Any, None], loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
) -> NoReturn:
    """Run `main` (on a loop from `loop_factory`, if given), then leave without finalizing the interpreter.

    Everything has stopped by then. Finalizing can hang forever when a thread of the Temporal SDK's
    Rust runtime wakes up late and waits for an interpreter that is going away
    (temporalio/sdk-python#300): a worker that said it stopped would stay in the process table.
    """
    code = 0
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(main)
    except typer.Exit as err:
        code = err.exit_code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@app.command()
def dev(
    temporal_port: int = typer.Option(7233, help="Temporal frontend (gRPC) port."),
    ui_port: int = typer.Option(8233, help="Temporal Web UI port."),
    api_port: int = typer.Option(8000, help="Remediator API port."),
    state_dir: Path | None = typer.Option(
        None, help="Temporal's SQLite file and the demo [default: REMEDIATOR_STATE_DIR or .remediator]"
    ),
    demo: bool = typer.Option(True, help="Break a real demo service and let Remediator fix it."),
    demo_port: int = typer.Option(0, help="Demo service port; 0 reuses the last one or picks a free one."),
    auto_approve: bool = typer.Option(False, help="Run remediations without waiting for approval."),
    verbose: bool = typer.Option(False, "--verbose", help="INFO logs, and tracebacks of failures."),
) -> None:
    """Temporal dev server, worker and API in one process; Ctrl-C stops them all."""
    from api.app import create_app
    from api.auth.keys import KeyStore
    from api.cli.demo import Demo
    from api.cli.dev_console import configure_logging, follow_phases
    from worker.client import connect
    from worker.codec import with_dev_key
    from worker.stack import Ports, run_dev

    configure_logging(verbose)

    base = get_settings()
    state = (state_dir or base.state_dir).resolve()
    settings = base.model_copy(update={"state_dir": state, "auto_approve": auto_approve or base.auto_approve})
    the_demo = Demo(state, demo_port) if demo else None
    if the_demo:
        settings = the_demo.configure(settings)
    check_playbooks_and_policy(settings, credentials=False)
    # After the checks, so a bad policy leaves no key behind; the API then has one to start with.
    keys_banner = "" if settings.auth == "disabled" else admin_key_banner(settings)

    async def on_ready(info: StackInfo) -> None:
        typer.echo(
            f"Remediator is running (Ctrl-C stops it)\n"
            f"  Temporal  {info.temporal_address}\n"
            f"  Web UI    {info.ui_url}\n"
            f"  API       {info.api_url}  (OpenAPI docs at {info.api_url}/docs)\n"
            f"  Board     {info.api_url}/board  (log in with an API key)\n"
            f"  state     {info.state_dir}\n{keys_banner}"
        )
        # The console's own client, with the codec key the stack reads incidents with.
        client = await connect(info.temporal_address, settings=with_dev_key(settings))
        parts = [follow_phases(client)]
        if the_demo:
            parts.append(the_demo.run(info, settings.auto_approve, KeyStore(settings.api_keys_path)))
        await asyncio.gather(*parts)

    async def main() -> None:
        start_telemetry(settings, worker=True)
        try:
            await run_dev(settings, Ports(temporal_port, ui_port, api_port), create_app, on_ready)
        except PortInUse as err:
            fail(f"{err}; pick another with {PORT_OPTIONS[err.what]}")
        except RuntimeError as err:  # the dev server or the worker did not start
            fail(str(err))

    run_then_exit(main())


@app.command()
def worker() -> None:
    """The worker alone, against the Temporal set by TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, profiles..."""
    from worker.client import connect
    from worker.main import run_worker
    from worker.stack import stop_on_signals, supervise

    async def main() -> None:
        settings = get_settings()
        start_telemetry(settings, worker=True)
        stop = stop_on_signals()
        try:
            client = await connect()
        except RuntimeError as err:
            fail(
                f"cannot connect to Temporal ({err}); set TEMPORAL_ADDRESS or a profile, or run `remediator dev`"
            )
        target = client.service_client.config.target_host
        typer.echo(
            f"worker polling task queue {settings.task_queue!r} of {target}, namespace {client.namespace!r}"
        )
        try:
            await supervise(stop, worker=run_worker(client, settings))
        except RuntimeError as err:  # e.g. the namespace does not exist
            fail(f"worker stopped: {err}")

    run_then_exit(main())


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """The HTTP API alone, against the Temporal set by TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, profiles..."""
    import uvloop

    from api.app import create_app
    from worker.stack import api_server, bind, stop_on_signals, supervise

    settings = get_settings()
    check_playbooks_and_policy(settings)
    start_telemetry(settings, worker=False)

    async def main() -> None:
        stop = stop_on_signals()
        try:
            sock = bind(host, port)
        except PortInUse as err:
            fail(f"{err}; pick another with --port")
        typer.echo(f"API listening on http://{host}:{port}")
        with sock:
            await supervise(stop, api=(api_server(create_app(settings), host, port, "info"), sock))

    # The API alone runs on uvloop: its HTTP and gRPC round trips cost less CPU per alert (ingest
    # went from 0.86x to 0.96x of the raw SDK's rate). Workers keep asyncio's own loop.
    run_then_exit(main(), uvloop.new_event_loop)
