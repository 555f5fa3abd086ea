"""Logging setup: our level from settings, discord.py kept quiet, secrets redacted everywhere.

discord.py's DEBUG logging prints gateway payloads and HTTP bodies (where redeem codes and the
token travel), so its loggers never go below INFO, and a filter masks anything that looks like
a token or a gift-card code in every record that reaches a handler.
"""

from __future__ import annotations

import logging
import re

from bot.ledger.codes import mask_code

_GIFT_CODE = re.compile(r"\b[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}\b")
# Discord bot tokens: three base64url parts separated by dots.
_TOKEN = re.compile(r"[\w-]{23,28}\.[\w-]{6,7}\.[\w-]{27,40}")
QUIET_LOGGERS = ("discord", "discord.http", "discord.gateway", "discord.client", "aiohttp", "apscheduler")


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then masks secrets in the whole line, tracebacks included."""

    def __init__(self, fmt: str, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(fmt)
        self.secrets = tuple(s for s in secrets if s)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        text = _TOKEN.sub("[redacted token]", text)
        return _GIFT_CODE.sub(lambda m: mask_code(m.group(0)), text)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


def setup_logging(level: str, secrets: tuple[str, ...] = ()) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(level)))
