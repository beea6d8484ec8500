"""The script sink: runs a program with the event in its environment, like certspotter's hooks.

A certspotter hook script works unchanged: the same variables (see ``certspotter-script(8)``),
the same ``EVENT`` values for the events certspotter knows (``error`` for a log's health or
misbehaviour), and new values, which its scripts must already tolerate, for the rest
(``lookalike``, ``test``). ``CTWATCH_EVENT`` always holds ctwatch's own event name.

The program is executed directly, never through a shell, so certificate text in the variables
is data and is never interpreted. Its files (event JSON, text summary, PEM) live in a private
temporary directory that is removed when it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import tempfile
from pathlib import Path
from typing import IO

import orjson

from ..errors import ConfigError, SinkError
from .render import clean, event_time, render_text, rfc3339, summary

MAX_ENV_VALUE = 64 * 1024
MAX_OUTPUT = 2000

_CERTSPOTTER_EVENTS = {
    "discovered_cert": "discovered_cert",
    "malformed_cert": "malformed_cert",
    "log_misbehaviour": "error",
    "log_stale": "error",
    "log_unreachable": "error",
}
# Event field -> variable, for fields passed through as they are.
_DIRECT = {
    "tbs_sha256": "TBS_SHA256",
    "cert_sha256": "CERT_SHA256",
    "pubkey_sha256": "PUBKEY_SHA256",
    "issuer": "ISSUER_DN",
    "subject": "SUBJECT_DN",
    "serial": "SERIAL",
    "log_url": "LOG_URI",
    "index": "ENTRY_INDEX",
    "error": "PARSE_ERROR",
    "severity": "CTWATCH_SEVERITY",
    "unexpected": "CTWATCH_UNEXPECTED",
}
_TIME_VARS = tuple(
    f"{edge}{suffix}" for edge in ("NOT_BEFORE", "NOT_AFTER") for suffix in ("", "_UNIXTIME", "_RFC3339")
)
# Every variable this sink can set. They are removed from the inherited environment first, so a
# value left in ctwatch's own environment can never pass for part of an event.
_OWN = frozenset(
    {
        "EVENT", "SUMMARY", "WATCH_ITEM", "DNS_NAMES", "IP_ADDRESSES", "VALIDITY_PARSE_ERROR",
        "JSON_FILENAME", "TEXT_FILENAME", "CERT_FILENAME", "CTWATCH_EVENT", "CTWATCH_EVENT_ID",
        *_TIME_VARS, *_DIRECT.values(),
    }
)  # fmt: skip


def _env_value(value: object) -> str:
    """Raw text for a variable: NUL (which no environment can hold) removed, length bounded."""
    if isinstance(value, list):
        text = ",".join(_env_value(v) for v in value)
    elif isinstance(value, str):
        text = value
    else:
        text = clean(value, MAX_ENV_VALUE)
    return text.replace("\0", "")[:MAX_ENV_VALUE]


def _split_names(event: dict[str, object]) -> tuple[list[object], list[object]]:
    """(DNS names, IP addresses): from ``ip_addresses`` if the event has it, else split ``names``."""
    names = event.get("names")
    names = names if isinstance(names, list) else []
    ips = event.get("ip_addresses")
    if isinstance(ips, list):
        return names, ips
    dns: list[object] = []
    addresses: list[object] = []
    for name in names:
        try:
            ipaddress.ip_address(str(name))
        except ValueError:
            dns.append(name)
        else:
            addresses.append(name)
    return dns, addresses


def script_environment(event: dict[str, object], files: dict[str, Path]) -> dict[str, str]:
    """The certspotter-compatible variables for ``event`` (without the inherited environment).

    ``files`` maps ``JSON_FILENAME``/``TEXT_FILENAME``/``CERT_FILENAME`` to the paths written.
    """
    kind = event.get("event")
    env = {
        "EVENT": _CERTSPOTTER_EVENTS.get(str(kind), _env_value(kind)),
        "SUMMARY": summary(event),
        "CTWATCH_EVENT": _env_value(kind),
        "CTWATCH_EVENT_ID": _env_value(event.get("id")),
    }
    watch_item = event.get("watch_item", event.get("brand"))
    if watch_item is not None:
        env["WATCH_ITEM"] = _env_value(watch_item)
    for field, var in _DIRECT.items():
        if event.get(field) is not None:
            env[var] = _env_value(event[field])
    if "names" in event or "ip_addresses" in event:
        dns_names, ip_addresses = _split_names(event)
        env["DNS_NAMES"] = _env_value(dns_names)
        env["IP_ADDRESSES"] = _env_value(ip_addresses)
    edges = {"NOT_BEFORE": event.get("not_before"), "NOT_AFTER": event.get("not_after")}
    if any(v is not None for v in edges.values()):
        times = {var: when for var, value in edges.items() if (when := event_time(value)) is not None}
        if len(times) == len(edges):
            for var, when in times.items():
                env[var] = when.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")
                env[f"{var}_UNIXTIME"] = str(int(when.timestamp()))
                env[f"{var}_RFC3339"] = rfc3339(when)
        else:
            env["VALIDITY_PARSE_ERROR"] = "unparsable validity: " + ", ".join(
                _env_value(v) for v in edges.values()
            )
    env.update({var: str(path) for var, path in files.items()})
    return env


def _output_tail(output: IO[bytes]) -> str:
    size = output.seek(0, os.SEEK_END)
    if not size:
        return ""
    output.seek(max(0, size - MAX_OUTPUT))
    return ": output: " + clean(output.read().decode("utf-8", "replace"), MAX_OUTPUT)


class ScriptSink:
    """Runs one program per event; exit status 0 is delivery, anything else a SinkError.

    Output (stdout and stderr together) goes to an anonymous file and its tail is quoted in
    the error, so a chatty script can neither block on a full pipe nor flood the log. A script
    that runs past ``timeout`` is killed with its whole process group.
    """

    def __init__(self, path: str, *, timeout: float = 60.0) -> None:
        program = Path(path).expanduser().absolute()
        if not program.is_file() or not os.access(program, os.X_OK):
            raise ConfigError(f"alert script is not an executable file: {program}")
        if timeout <= 0:
            raise ConfigError("alert script timeout must be > 0")
        self.path = program
        self.timeout = timeout
        self.name = f"script:{program}"

    def _write_files(self, event: dict[str, object], tmp: Path) -> dict[str, Path]:
        files = {
            "JSON_FILENAME": tmp / "event.json",
            "TEXT_FILENAME": tmp / "event.txt",
        }
        try:
            files["JSON_FILENAME"].write_bytes(orjson.dumps(event, option=orjson.OPT_INDENT_2) + b"\n")
        except orjson.JSONEncodeError as e:
            raise SinkError(f"{self.name}: event is not valid JSON: {e}") from None
        files["TEXT_FILENAME"].write_text(render_text(event), encoding="utf-8")
        pem = event.get("pem")
        if isinstance(pem, str):
            files["CERT_FILENAME"] = tmp / "cert.pem"
            files["CERT_FILENAME"].write_text(pem, encoding="ascii", errors="replace")
        return files

    async def deliver(self, event: dict[str, object]) -> None:
        """Run the program on ``event`` and wait for it (at most ``timeout`` seconds)."""
        try:
            with (
                tempfile.TemporaryDirectory(prefix="ctwatch-alert-", ignore_cleanup_errors=True) as tmp,
                tempfile.TemporaryFile() as output,
            ):
                env = {k: v for k, v in os.environ.items() if k not in _OWN}
                env.update(script_environment(event, self._write_files(event, Path(tmp))))
                proc = await asyncio.create_subprocess_exec(
                    self.path,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=asyncio.subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
                await self._wait(proc, output)
        except OSError as e:  # no space for the files, or the program vanished or lost its x bit
            raise SinkError(f"{self.name}: cannot run: {e}") from None

    async def _wait(self, proc: asyncio.subprocess.Process, output: IO[bytes]) -> None:
        try:
            status = await asyncio.wait_for(proc.wait(), self.timeout)
        except TimeoutError:
            raise SinkError(f"{self.name}: killed after {self.timeout:g}s{_output_tail(output)}") from None
        finally:
            if proc.returncode is None:  # timed out, or ctwatch is shutting down
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        if status < 0:
            raise SinkError(f"{self.name}: killed by signal {-status}{_output_tail(output)}")
        if status:
            raise SinkError(f"{self.name}: exit status {status}{_output_tail(output)}")
