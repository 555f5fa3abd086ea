"""Logging setup: our level from settings, other libraries kept at INFO+, secrets redacted everywhere.

LOG_LEVEL applies to our own code (`bot.*`, `cogs.*`). Every other logger stays at INFO or
above whatever LOG_LEVEL says: at DEBUG, discord.py prints gateway payloads and HTTP bodies
(where redeem codes travel) and aiosqlite prints each call with its arguments. A filter on the
handler drops such records even if a library raises its own logger's level, and the formatter
masks anything that looks like a bot token, an interaction token in a URL, or a gift-card code
in every line it writes, tracebacks included.
"""

from __future__ import annotations

import logging
import re
from typing import TextIO

from bot.domain.codes import mask_code

#: Loggers LOG_LEVEL applies to; every other logger is held at INFO or above.
OWN_LOGGERS = ("bot", "cogs", "__main__")
#: Libraries whose INFO lines are routine chatter (APScheduler: six lines per 20-second tick).
CHATTY_LOGGERS = ("apscheduler",)

_GIFT_CODE = re.compile(r"\b[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}\b")
# Discord bot tokens: three base64url parts separated by dots.
_TOKEN = re.compile(r"[\w-]{23,28}\.[\w-]{6,7}\.[\w-]{27,40}")
# Interaction tokens travel in URL paths (discord.py logs the URL of a rate-limited request).
_URL_TOKEN = re.compile(r"(/(?:interactions|webhooks)/\d+/)[^/\s?]+")


def is_own(name: str) -> bool:
    return any(name == own or name.startswith(own + ".") for own in OWN_LOGGERS)


class LibraryDebugFilter(logging.Filter):
    """Drops other libraries' records below INFO, whatever their loggers' levels are."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or is_own(record.name)


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then masks secrets in the whole line, tracebacks included."""

    def __init__(self, fmt: str, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(fmt)
        self.secrets = tuple(s for s in secrets if s)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        text = _TOKEN.sub("[redacted token]", text)
        text = _URL_TOKEN.sub(r"\1[redacted]", text)
        return _GIFT_CODE.sub(lambda m: mask_code(m.group(0)), text)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


def setup_logging(level: str, secrets: tuple[str, ...] = (), stream: TextIO | None = None) -> None:
    """One handler on the root logger (stderr unless `stream` is given), replacing any others."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", secrets))
    handler.addFilter(LibraryDebugFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.INFO, numeric))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(numeric)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, numeric))
