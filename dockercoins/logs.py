"""Logging helpers named in settings.LOGGING."""

import logging


class WithoutTraceback(logging.Filter):
    """Log the record as one WARNING line: no traceback, whatever the caller
    attached (Django logs a bad Host header as an ERROR with exc_info)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
