"""Log formatting: one JSON object per line for machines, or plain text for people.

Every record made while a request is handled carries that request's id (from
`X-Request-ID` or generated), so an error line can be joined to its access
line and to the CDN's logs. The same configuration is handed to uvicorn, so
its own lines (start-up, shutdown, protocol errors) come out in the same form.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import logging.config
import re
import sys
import time
from contextvars import ContextVar
from typing import Any

from proxy.settings import Settings

# The id of the request being handled, for every log record made meanwhile.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# LogRecord attributes that are not extra fields passed by the caller.
# uvicorn's color_message is its terminal copy of the message.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class LibvipsWarnings(logging.Filter):
    """libvips' warnings: each kind once per `interval` seconds, every one counted.

    libvips warns about harmless quirks of a file (an unusual EXIF resolution
    unit, a truncated ICC tag) once or several times per image: on a busy
    server that is a line per request that says nothing new. The first of a
    kind is logged with a note; repeats within the interval go to the
    `pixelpipe_libvips_warnings` counter only. At DEBUG every one is logged.
    """

    interval = 600.0
    max_kinds = 256  # remembered kinds; past this the memory starts over

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.last_logged: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        from proxy.monitoring import LIBVIPS_WARNINGS

        LIBVIPS_WARNINGS.inc()
        if logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return True
        kind = _DIGITS.sub("#", record.getMessage())[:160]
        now = time.monotonic()
        last = self.last_logged.get(kind)
        if last is not None and now - last < self.interval:
            return False
        if len(self.last_logged) >= self.max_kinds:
            self.last_logged.clear()
        self.last_logged[kind] = now
        record.msg = f"{record.getMessage()} (repeats are counted, not logged, for 10 minutes)"
        record.args = None
        return True


_DIGITS = re.compile(r"\d+")


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The caller's fields: `extra={"fields": {...}}` (the access log's, cheap to
    read), or any other extra attributes."""
    fields = getattr(record, "fields", None)
    if isinstance(fields, dict):
        return fields
    return {
        name: value
        for name, value in record.__dict__.items()
        if name not in _STANDARD and not name.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", "request_id", extra fields..., "exception"}."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        entry.update(record_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # default=str: a stray non-JSON value must not cost the line.
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level logger [request id] message key=value ...` for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_iso_time(record.created), record.levelname, record.name]
        request_id = getattr(record, "request_id", None)
        if request_id:
            parts.append(f"[{request_id}]")
        parts.append(record.getMessage())
        parts.extend(
            f"{name}={value}" for name, value in record_fields(record).items() if value is not None
        )
        line = " ".join(str(part) for part in parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class AccessLog:
    """The access line of every request, written without the logging machinery.

    A line through `logging` costs ~20 µs (LogRecord, filters, handler lock,
    formatter, a write and flush per line); on a cache hit that was more than
    the rest of pixelpipe's work together (BENCHMARKS.md, "Hits"). The line is
    the same as JsonFormatter/TextFormatter would write for logger
    `pixelpipe.access`; lines are kept for at most `flush_after` seconds or
    `max_buffer` bytes and written together, as nginx's buffered access log
    does. Only the event loop's thread writes here, so the buffer needs no lock.
    """

    logger_name = "pixelpipe.access"

    def __init__(
        self, log_format: str, flush_after: float = 0.1, max_buffer: int = 64 * 1024
    ) -> None:
        self.json = log_format == "json"
        self.flush_after = flush_after
        self.max_buffer = max_buffer
        self.lines: list[str] = []
        self.size = 0
        self._logger = logging.getLogger(self.logger_name)

    @property
    def enabled(self) -> bool:
        return self._logger.isEnabledFor(logging.INFO)

    def write(
        self,
        request_id: str,
        method: str,
        path: str,
        status: int,
        sent: int,
        duration_ms: float,
        cache: str | None,
        fmt: str | None,
        fetch_ms: float | None,
        process_ms: float | None,
        error: str | None,
        trace_id: str | None = None,
    ) -> None:
        now = _iso_time(time.time())
        if self.json:
            # Written out field by field: a generic encoder's walk over a dict
            # costs more than everything else on the line. Request ids are
            # plain (proxy.observability); every other string is escaped.
            line = (
                f'{{"time":"{now}","level":"info","logger":"{self.logger_name}",'
                f'"message":"request","request_id":{_string(request_id)},'
                f'"method":{_string(method)},"path":{_string(path)},"status":{status},'
                f'"bytes":{sent},"duration_ms":{duration_ms!r},"cache":{_string(cache)},'
                f'"format":{_string(fmt)},"fetch_ms":{_number(fetch_ms)},'
                f'"process_ms":{_number(process_ms)},"error":{_string(error)}'
                # Only with tracing on (a sampled trace): OpenTelemetry's hex id.
                + (f',"trace_id":"{trace_id}"}}' if trace_id else "}")
            )
        else:
            optional = [
                f"{name}={_text(str(value))}"
                for name, value in (
                    ("cache", cache),
                    ("format", fmt),
                    ("fetch_ms", fetch_ms),
                    ("process_ms", process_ms),
                    ("error", error),
                    ("trace_id", trace_id),
                )
                if value is not None
            ]
            line = (
                f"{now} INFO {self.logger_name} [{_text(request_id)}] request "
                f"method={_text(method)} path={_text(path)} status={status} bytes={sent} "
                f"duration_ms={duration_ms} " + " ".join(optional)
            ).rstrip()
        self.lines.append(line)
        self.size += len(line)
        if self.size >= self.max_buffer:
            self.flush()
        elif len(self.lines) == 1:
            try:
                asyncio.get_running_loop().call_later(self.flush_after, self.flush)
            except RuntimeError:  # no event loop: nothing would flush later
                self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        text = "\n".join(self.lines) + "\n"
        self.lines.clear()
        self.size = 0
        stream = sys.stderr
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            pass  # stderr closed at shutdown: the lines cannot go anywhere


# Characters a reader may take for a line break or a terminal command besides
# the C0 controls JSON escapes: DEL, C1 (NEL U+0085 among them), U+2028/2029.
_LINE_BREAKERS = re.compile("[\x7f-\x9f\u2028\u2029]")
# In a text line, anything but printable ASCII (and space, quote, backslash,
# which would let a value pose as further fields) is escaped.
_TEXT_UNSAFE = re.compile('[^\x21-\x7e]|["\\\\]')


def _string(value: str | None) -> str:
    """A JSON string that no reader can split into two lines."""
    if value is None:
        return "null"
    encoded = _encode_string(value)
    if _LINE_BREAKERS.search(encoded) is None:
        return encoded
    return _LINE_BREAKERS.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)


def _text(value: str) -> str:
    """A text-line value that stays one field of one line: plain, or quoted and escaped."""
    if _TEXT_UNSAFE.search(value) is None:
        return value
    escaped = value.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return f'"{escaped}"'


def _number(value: float | None) -> str:
    return "null" if value is None else repr(value)


_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _iso_time(created: float) -> str:
    return f"{_iso_second(int(created))}.{int(created % 1 * 1000):03d}Z"


@functools.lru_cache(maxsize=4)
def _iso_second(second: int) -> str:
    # Formatted once per second, not once per line.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def configure_logging(settings: Settings) -> None:
    """Apply `logging_config` in this process, and skip what our lines never show.

    The access log writes a line per request, so each LogRecord's cost counts:
    thread, process and multiprocessing names and the caller's file and line
    are looked up for every record unless turned off (the logging HOWTO's
    "Optimization" section names these switches). Our formats print none of them.
    """
    config = logging_config(settings)
    # uvicorn applies the same config before the app starts, and dictConfig
    # replaces a logger's handlers but adds to its filters: without this the
    # libvips filter ran twice, counting and annotating each warning twice.
    for name in config["loggers"]:
        for old in list(logging.getLogger(name).filters):
            logging.getLogger(name).removeFilter(old)
    logging.config.dictConfig(config)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # no findCaller(): records carry no file/line


def logging_config(settings: Settings) -> dict[str, Any]:
    """A logging.config.dictConfig dict: ours, uvicorn's and the libraries' loggers."""
    formatter = (
        "proxy.logs.JsonFormatter"
        if settings.log_format == "json"
        else ("proxy.logs.TextFormatter")
    )
    level = settings.log_level.upper()
    quiet = "WARNING" if level in ("DEBUG", "INFO") else level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "proxy.logs.RequestIdFilter"},
            "libvips": {"()": "proxy.logs.LibvipsWarnings"},
        },
        "formatters": {"main": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "main",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # Our access lines replace uvicorn's; libvips and httpx narrate at INFO.
            # No handler and no propagation: uvicorn checks hasHandlers() and, when
            # true, builds the arguments of a line per request even if it is dropped.
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "pyvips": {"level": quiet, "filters": ["libvips"]},
            "httpx": {"level": quiet},
            "httpcore": {"level": quiet},
        },
    }
