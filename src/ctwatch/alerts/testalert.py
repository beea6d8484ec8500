"""``ctwatch test-alert``: one sample event straight to every configured sink, to see which works.

The event skips the outbox: nothing is recorded and nothing is retried later, because the point
is to learn now which sink delivers and, for one that does not, why. Each sink still behaves as
it does for real alerts (a webhook retries as configured), so a success here means real alerts
get through the same way.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from ..config import load_config
from ..errors import ConfigError, CtwatchError
from ..runner import RunOptions, build_sinks
from .base import Sink
from .render import clean


def sample_event() -> dict[str, object]:
    """A ``test`` event with a fresh id; every sink renders it as "Test alert: this sink works"."""
    return {
        "event": "test",
        "id": f"test:{uuid.uuid4()}",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "message": "A test alert from ctwatch test-alert: alerts reach you here.",
    }


@dataclass(frozen=True, slots=True)
class SinkResult:
    """How one sink took the sample event: ``error`` is None when it was delivered."""

    sink: str
    error: str | None

    @property
    def ok(self) -> bool:
        """Whether the sink took the event (the command exits 0 only if every one did)."""
        return self.error is None

    def line(self) -> str:
        """``ok      <sink>`` or ``FAILED  <sink>: <why>``, for the command's output."""
        if self.error is None:
            return f"ok      {self.sink}"
        return f"FAILED  {self.sink}: {self.error.removeprefix(f'{self.sink}: ')}"


async def _try(sink: Sink, event: dict[str, object]) -> SinkResult:
    try:
        await sink.deliver(dict(event))
    except (CtwatchError, OSError) as e:
        return SinkResult(sink.name, clean(str(e), 600))
    return SinkResult(sink.name, None)


async def send_test_alert(sinks: list[Sink], event: dict[str, object] | None = None) -> list[SinkResult]:
    """Deliver ``event`` (default: :func:`sample_event`) to every sink at once; one result each, in order."""
    event = event or sample_event()
    return list(await asyncio.gather(*(_try(sink, event) for sink in sinks)))


def configured_sinks(opts: RunOptions) -> list[Sink]:
    """The sinks ``ctwatch run`` would use with the same options; ConfigError if there are none."""
    sinks = build_sinks(opts, load_config(opts.config))
    if not sinks:
        raise ConfigError(
            "no alert sinks configured: give --alerts-jsonl, --webhook, --email, --script, "
            "--apprise, or an [alerts] table in --config"
        )
    return sinks
