"""The one answer to whatever goes wrong in an interaction (STYLE.md point 4): a member's mistake
gets its short message, our bug an apology with an error id and a logged traceback, and a write
that had committed says what was done instead of "nothing was changed" (SPEC §7).

The command tree (bot/discordbot/client.py) and every View's `on_error` hand their errors to
`report_error`; a cog calls `record_committed` as soon as a write of its interaction commits.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import discord
from discord import app_commands

from bot.app.ledger import Ledger
from bot.discordbot import fit
from bot.discordbot.render import error_text
from bot.domain.errors import UserError

log = logging.getLogger(__name__)

#: interaction.extras key: what a committed write did, in words fit to show its user.
COMMITTED = "promobalance_committed"


def record_committed(interaction: discord.Interaction, summary: str) -> None:
    """Call as soon as a write has committed: if answering then fails, the error handler tells the
    user this (with an error id) instead of "nothing was changed" (SPEC §7)."""
    interaction.extras[COMMITTED] = summary


async def send_ephemeral(interaction: discord.Interaction, content: str | None = None, **kwargs: Any) -> None:
    """Answer privately, whether or not the interaction was answered or deferred already."""
    if content is not None:
        kwargs["content"] = content
    if interaction.response.is_done():
        await interaction.followup.send(ephemeral=True, **kwargs)
    else:
        await interaction.response.send_message(ephemeral=True, **kwargs)


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Users' mistakes get their short message; our bugs get an apology and an error id. When a
    write of this interaction had committed, the answer says what was done instead (SPEC §7)."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, discord.HTTPException) and original.code == 40060:
        # Our own second answer raises InteractionResponded before any request; Discord's 40060
        # means this interaction was answered already: by an earlier delivery of it (Discord can
        # deliver one twice; a replayed write returns its first result), or by a second copy of
        # the bot running with the same token. That answer stands, whatever this one did.
        log.warning(
            "interaction %s was already acknowledged: delivered twice, or is a second copy of the "
            "bot running with the same token?",
            interaction.id,
        )
        return
    done = await committed_summary(interaction)
    expired = isinstance(original, discord.NotFound) and original.code == 10062
    if done is not None:
        error_id = secrets.token_hex(4)
        command = interaction.command.qualified_name if interaction.command else "component"
        log.error("error %s in /%s after its write committed", error_id, command, exc_info=original)
        tail = (
            f"\n\nThis was saved, but my answer to you failed (error id `{error_id}`, for a server admin). "
            "There is no need to do it again."
        )
        await tell(interaction, fit.clip(done, fit.CONTENT - len(tail)) + tail, dm=expired)
        return
    if isinstance(original, UserError):
        message = error_text(original)
    elif isinstance(original, app_commands.CheckFailure) and str(original):
        message = str(original)
    elif isinstance(original, app_commands.TransformerError):
        message = f"`{original.value}` isn't a valid {original.type.name.lower().replace('_', ' ')} here."
    elif isinstance(original, (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch)):
        # Discord still shows a command as it was before an update (global syncs take a while).
        log.warning("interaction %s for an out-of-date command: %s", interaction.id, original)
        message = "This command changed in an update of the bot. Discord will show the new version soon: try again."
    elif expired:
        log.warning("interaction %s expired before we answered (Discord allows 3 seconds)", interaction.id)
        return
    else:
        error_id = secrets.token_hex(4)
        command = interaction.command.qualified_name if interaction.command else "component"
        log.error("error %s in /%s", error_id, command, exc_info=original)
        message = (
            f"Sorry, something went wrong on our side and nothing was changed. "
            f"Error id `{error_id}`: a server admin can find it in the bot's log."
        )
    await tell(interaction, fit.clip(message, fit.CONTENT))


async def committed_summary(interaction: discord.Interaction) -> str | None:
    """What this interaction's committed writes did: the cog's own words (record_committed), or,
    when the error came between the commit and those words, the database's record of it."""
    summary = interaction.extras.get(COMMITTED)
    if summary is not None:
        return str(summary)
    ledger = getattr(interaction.client, "ledger", None)
    if not isinstance(ledger, Ledger):  # a client that keeps no ledger has no record to look in
        return None
    try:
        operations = await ledger.committed_for_interaction(interaction.id)
    except Exception:  # the store itself failing: we cannot claim anything was saved
        log.exception("could not look up what interaction %s committed", interaction.id)
        return None
    if not operations:
        return None
    return "Your request was carried out (" + ", ".join(dict.fromkeys(operations)).replace("_", " ") + ")."


async def tell(interaction: discord.Interaction, text: str, *, dm: bool = False) -> None:
    """Say ``text`` privately to the user: as the answer or a followup, else (the interaction
    expired, or Discord refused) in a DM."""
    if not dm:
        try:
            await send_ephemeral(interaction, text)
            return
        except discord.HTTPException as exc:
            if exc.code == 40060:  # answered already: an earlier delivery of this same interaction
                log.info("interaction %s was answered already (delivered again?); not answering twice", interaction.id)
                return
            log.warning("could not answer interaction %s (%s %s); trying a DM", interaction.id, exc.status, exc.code)
    try:
        await interaction.user.send(text)
    except discord.HTTPException as exc:
        log.warning(
            "could not tell the user of interaction %s by DM either (%s %s)", interaction.id, exc.status, exc.code
        )
