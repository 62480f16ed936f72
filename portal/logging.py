"""Structured logging: every record carries the id of the run it belongs to."""

import contextvars
import logging
import traceback

from pythonjsonlogger.json import JsonFormatter

from .redaction import redact_text

current_run_id = contextvars.ContextVar("current_run_id", default=None)


class RunContextFilter(logging.Filter):
    def filter(self, record):
        if not hasattr(record, "run_id"):
            record.run_id = current_run_id.get()
        return True


class RedactSecretsFilter(logging.Filter):
    """Last line of defence: secret query parameters never reach a log line,
    whoever logged the URL (our session, urllib3's retry warnings, a library)."""

    def filter(self, record):
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class RedactingJsonFormatter(JsonFormatter):
    """JSON lines with secret query values hidden everywhere in the line: a
    record's extras too (django.request's `request`, whose repr is the full URL)."""

    def format(self, record):
        return redact_text(super().format(record))


class RunLogHandler(logging.Handler):
    """Collects a run's log lines so staff can read them on the run's page."""

    def __init__(self, run_id, limit=500):
        super().__init__(level=logging.INFO)
        self.run_id = run_id
        self.limit = limit
        self.lines = []

    def emit(self, record):
        if current_run_id.get() != self.run_id or len(self.lines) >= self.limit:
            return
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            # e.g. one event of a batch failed and the batch went on: staff need the why
            line += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.lines.append(redact_text(line))
