"""The composition root: builds the store, the projection engine and the clock once, and
hands them to the app, the CLI and the scheduler. Nothing else reaches for globals."""

from __future__ import annotations

from dataclasses import dataclass, field

from events import Clock, SQLiteEventStore, SystemClock
from projections import ProjectionEngine, builtin_projections

from .config import Config
from .tokens import TokenStore


@dataclass
class Services:
    """Everything an entry point needs, built from one Config."""

    config: Config
    clock: Clock
    store: SQLiteEventStore
    engine: ProjectionEngine
    #: API tokens (same database file); made from `store` when not given
    tokens: TokenStore = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.tokens is None:
            self.tokens = TokenStore(self.store, self.clock)

    def close(self) -> None:
        self.store.close()


def build_services(config: Config, clock: Clock | None = None, *, setup: bool = True) -> Services:
    """Open (and migrate) the database and set up the projections.

    `setup=False` skips projection set-up (and the automatic rebuild of projections whose
    logic version changed), for commands that only touch the log."""
    clock = clock or SystemClock()
    store = SQLiteEventStore(
        config.db,
        clock=clock,
        busy_timeout=config.busy_timeout,
        synchronous="NORMAL" if config.synchronous.upper() == "NORMAL" else "FULL",
    )
    engine = ProjectionEngine(store, builtin_projections(), clock)
    if setup:
        engine.setup()
    return Services(config=config, clock=clock, store=store, engine=engine, tokens=TokenStore(store, clock))
