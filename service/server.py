"""Running the API: gunicorn (POSIX) or waitress (anywhere) in this process, and the
`serve` supervisor that runs that server and exactly one scheduler as two child processes.

Why a supervisor: gunicorn's master reaps every child it has (waitpid(-1)), so a scheduler
started beside it inside the master would die unnoticed; workers must not run it (each
would run every job), nor the app factory. The supervisor opens no database connection:
the database is initialised before it starts, and each worker opens its own after fork.

`python -m service.server --host H --port P --workers N` runs the server alone; the
configuration comes from the POLICY_TIMELINE_* environment, as everywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from .config import PREFIX, Config, load_config
from .live import end_feeds_on_sigterm

SERVERS = ("auto", "gunicorn", "waitress")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def gunicorn_available() -> bool:
    if os.name != "posix":
        return False
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return False
    return True


def waitress_available() -> bool:
    try:
        import waitress  # noqa: F401
    except ImportError:
        return False
    return True


def pick_server(name: str) -> str:
    """The server to run: gunicorn where it can run, else waitress. Raises ValueError if the
    one asked for (or, for "auto", either) cannot run here."""
    if name not in SERVERS:
        raise ValueError(f"unknown server {name!r}; choose from {', '.join(SERVERS)}")
    if name in ("auto", "gunicorn") and gunicorn_available():
        return "gunicorn"
    if name in ("auto", "waitress") and waitress_available():
        return "waitress"
    if name == "gunicorn":
        raise ValueError("gunicorn cannot run here (it needs POSIX and the gunicorn package); try --server waitress")
    missing = "no server is" if name == "auto" else "waitress is not"
    raise ValueError(f"{missing} installed: pip install gunicorn waitress")


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_can_listen(host: str, port: int) -> None:
    """Fail early, with one line, if the address cannot be listened on (in use, not local).
    Raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
        try:
            s.bind((host, port))
        except OSError as e:
            raise OSError(f"cannot listen on {bind_address(host, port)}: {e.strerror or e}") from None


def run_server(config: Config, host: str, port: int, workers: int, server: str = "auto") -> None:
    """Serve the app until SIGINT/SIGTERM (blocking). Each gunicorn worker builds its own
    app (and database connections) after the fork; nothing is opened in the master."""
    server = pick_server(server)
    if server == "gunicorn":
        _run_gunicorn(config, host, port, workers)
    else:
        _run_waitress(config, host, port, workers)


def _run_gunicorn(config: Config, host: str, port: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    class PolicyTimelineApplication(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = {
                "bind": bind_address(host, port),
                "workers": workers,
                "proc_name": "policy-timeline",
                "graceful_timeout": 10,
                # the default control socket is one path per user: two servers would clash
                "control_socket_disable": True,
                # threads per worker: a live feed (/v1/events/live) holds one, and the app caps
                # feeds per process below this (config.max_live_feeds), so requests still flow
                "worker_class": "gthread",
                "threads": config.server_threads,
                "post_worker_init": end_feeds_on_sigterm,
            }
            for key, value in options.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> Any:  # called in each worker, after the fork
            from .app import create_app

            return create_app(config)

    PolicyTimelineApplication().run()


def _run_waitress(config: Config, host: str, port: int, workers: int) -> None:
    import waitress

    from .app import create_app

    # waitress is one process: workers become threads. SIGTERM ends it like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        threads = max(config.server_threads, workers)  # above max_live_feeds, as with gunicorn
        waitress.serve(create_app(config), host=host, port=port, threads=threads, ident="policy-timeline")


# -- the supervisor -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    scheduler: bool = True
    server: str = "auto"


def config_environment(config: Config) -> dict[str, str]:
    """The environment that gives a child process this exact configuration."""
    env = dict(os.environ)
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, bool):
            env[PREFIX + f.name.upper()] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            env[PREFIX + f.name.upper()] = str(value)
    return env


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the supervisor dies without cleaning up."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Supervisor:
    """Runs the server and one scheduler as child processes; forwards SIGINT/SIGTERM to
    both, restarts a scheduler that crashes, and stops the scheduler when the server ends."""

    def __init__(self, config: Config, options: ServeOptions, log: Callable[[str], None]) -> None:
        self.config = config
        self.options = options
        self.log = log
        self.env = config_environment(config)
        self.server: subprocess.Popen[bytes] | None = None
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, *args], env=self.env, preexec_fn=_die_with_parent)

    def start_scheduler(self) -> None:
        self.scheduler = self._spawn("-m", "service.cli", "scheduler")

    def start_server(self) -> None:
        o = self.options
        self.server = self._spawn(
            "-m", "service.server", "--host", o.host, "--port", str(o.port),
            "--workers", str(o.workers), "--server", o.server,
        )  # fmt: skip

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping.set()
        for child in (self.server, self.scheduler):
            if child is not None and child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signum)

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """Start both children and wait; returns the exit status for the command."""
        previous = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        try:
            self.start_server()
            if self.options.scheduler:
                self.start_scheduler()
            if self._wait_until_listening() and on_ready is not None:
                on_ready()
            return self._watch()
        finally:
            self._stop_scheduler()
            if self.server is not None and self.server.poll() is None:
                self.server.terminate()
                _wait_or_kill(self.server, 15)
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _wait_until_listening(self, timeout: float = 60.0) -> bool:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.options.host, self.options.host)
        deadline = time.monotonic() + timeout
        assert self.server is not None
        while time.monotonic() < deadline and not self.stopping.is_set() and self.server.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection((host, self.options.port), timeout=0.5):
                return True
            time.sleep(0.1)
        return False

    def _watch(self) -> int:
        assert self.server is not None
        backoff = 1.0
        while self.server.poll() is None:
            scheduler = self.scheduler
            if scheduler is not None and not self.stopping.is_set() and scheduler.poll() is not None:
                self.log(f"scheduler exited with status {scheduler.returncode}; restarting in {backoff:.0f} s")
                if self.stopping.wait(backoff):
                    break
                backoff = min(backoff * 2, 60.0)
                self.start_scheduler()
            self.stopping.wait(0.2)
        status = self.server.wait()
        if self.stopping.is_set() and status in (0, -signal.SIGTERM, -signal.SIGINT):
            return 0
        if status != 0:
            self.log(f"the server exited with status {status}")
        return 1 if status else 0

    def _stop_scheduler(self) -> None:
        if self.scheduler is not None and self.scheduler.poll() is None:
            self.scheduler.send_signal(signal.SIGTERM)
            _wait_or_kill(self.scheduler, 20)


def _wait_or_kill(child: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server", choices=SERVERS, default="auto")
    args = parser.parse_args(argv)
    run_server(load_config(), args.host, args.port, args.workers, args.server)


if __name__ == "__main__":
    main()
