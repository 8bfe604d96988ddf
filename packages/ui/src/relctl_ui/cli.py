"""`relctl ui`: serve the web app over the run database, read-only, on this host."""

from __future__ import annotations

import errno
import socket

import click
from relctl_core.errors import InputError, first_line
from relctl_core.settings import load_settings, redact_url

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def bound_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or bad input when the port is taken or the host is not this one's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InputError(f"port {port} on {host} is in use (another relctl ui?); pick another with --port", path="--port") from None
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", path="--host") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def database_warning(url: str) -> str | None:
    """What stands in the way of reading the run database now, in words (None: nothing)."""
    from relctl_core.migrate import current_revision, head_revision

    from relctl_ui.readonly import read_only_engine, read_only_url

    read_only_engine(url)
    try:
        revision = current_revision(read_only_url(url))
    except Exception as exc:  # noqa: BLE001 - any failure to read is said, and the pages say it again
        return f"the run database {redact_url(url)} cannot be read now ({first_line(exc)}); the pages say so until it can"
    if revision != head_revision():
        return f"the run database is at schema {revision or 'none'}, not {head_revision()}: run `relctl db upgrade`"
    return None


@click.command(epilog="\b\nExample:\n  relctl ui --port 8765      # then open http://127.0.0.1:8765/")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on (0.0.0.0 shows the run database to the network).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--resamples", default=2000, show_default=True, type=click.IntRange(min=100), help="Bootstrap resamples of the intervals the pages compute.")
@click.option(
    "--prebuild", default=10, show_default=True, type=click.IntRange(min=0),
    help="Build the report, the judged board and the baseline comparisons of this many of the most recently finished experiments ahead of their first view, and of each that finishes meanwhile (0: on first view only).",
)  # fmt: skip
@click.option(
    "--answer-within", default=0.2, show_default=True, type=click.FloatRange(min=0), metavar="SECONDS",
    help="How long a page waits for a part being built before it answers that it is being built (and fills in by itself when it is).",
)  # fmt: skip
def ui(host: str, port: int, resamples: int, prebuild: int, answer_within: float) -> None:
    """Serve a read-only web app over the run database: experiments, leaderboards, live stage progress,
    comparisons of two runs, stage logs and each experiment's report.

    The app never writes to the run database (its connections are read-only); built reports are kept
    in RELCTL_HOME/ui-cache. The parts that resample out-of-fold rows (reports, judged boards,
    comparisons) take seconds to build: those of the experiments that finished last, with each model's
    comparison against its better baseline, are built ahead (--prebuild), the others on their first
    view. A page never waits for such a build: it says that the part is being built and fills in by
    itself when it is. Ctrl-C stops it.
    """
    from pathlib import Path

    import uvicorn
    from sqlalchemy.engine import make_url

    from relctl_ui.app import create_app
    from relctl_ui.readonly import read_only_url

    settings = load_settings()
    read_only_url(settings.database_url)  # bad input (an in-memory database) before anything listens
    parsed = make_url(settings.database_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).expanduser().is_file():
        raise InputError(f"no run database at {parsed.database}: run an experiment first (relctl run ...)", path="RELCTL_DATABASE_URL")
    sock = bound_socket(host, port)
    warning = database_warning(settings.database_url)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"relctl ui on http://{shown}:{port}/ (run database {redact_url(settings.database_url)}, read-only); Ctrl-C stops it")
    app = create_app(settings, resamples=resamples, prebuild=prebuild, answer_within=answer_within)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
