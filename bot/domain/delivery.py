"""Delivery rules: what an order still owes in Discord after it commits, and what to do when
Discord does not play along (SPEC §3). Plain Python: the worker (bot/app/delivery_worker.py) asks these,
the store records the answers, the Discord layer (bot/discordbot/notify.py) renders the reasons.

- A purchase of an item with a role records `add_role` in the purchase's transaction; a refund
  records `remove_role` in its own; an automatic refund records `dm_refund` to tell the member.
- A staff order records `post_order` (to the fulfilment channel, when one is set); fulfilling,
  denying or cancelling it records `edit_post` (when it was posted, or is being posted) and the DM
  that tells the member (`dm_fulfilled`, `dm_denied`, `dm_cancelled`); a moderator's refund of any
  order records `dm_refunded`. Each is recorded in the transaction of the change it reports.
- A passing failure (rate limit, 5xx, network) is retried on BACKOFF; past GIVE_UP_AFTER the
  delivery is treated as impossible.
- An impossible `add_role` (role deleted, role above the bot, Missing Permissions, member gone,
  given up) refunds its order, once, and DMs the member. An impossible `remove_role` because the
  role or the member is gone has nothing left to do: it is done. Anything else that cannot be
  done is recorded as failed, never retried and never refunded twice. A DM or a post that is
  impossible (DMs closed, the channel gone) is failed and never refunds: the order was paid and
  stands. An edit of a post that is gone has nothing left to do.
"""

from __future__ import annotations

from typing import Literal

DeliveryAction = Literal[
    "add_role",
    "remove_role",
    "dm_refund",
    "post_order",
    "edit_post",
    "dm_fulfilled",
    "dm_denied",
    "dm_cancelled",
    "dm_refunded",
]
DeliveryStatus = Literal["pending", "done", "failed", "cancelled"]

ADD_ROLE: DeliveryAction = "add_role"
REMOVE_ROLE: DeliveryAction = "remove_role"
DM_REFUND: DeliveryAction = "dm_refund"  # an automatic refund (its role could not be given)
POST_ORDER: DeliveryAction = "post_order"  # a new staff order, to the fulfilment channel
EDIT_POST: DeliveryAction = "edit_post"  # that post, once someone acted on the order
DM_FULFILLED: DeliveryAction = "dm_fulfilled"
DM_DENIED: DeliveryAction = "dm_denied"
DM_CANCELLED: DeliveryAction = "dm_cancelled"
DM_REFUNDED: DeliveryAction = "dm_refunded"  # a moderator's refund

ACTIONS: tuple[DeliveryAction, ...] = (
    ADD_ROLE,
    REMOVE_ROLE,
    DM_REFUND,
    POST_ORDER,
    EDIT_POST,
    DM_FULFILLED,
    DM_DENIED,
    DM_CANCELLED,
    DM_REFUNDED,
)
#: Deliveries that send a new message: sent twice, the member or the channel sees it twice. One
#: interrupted by a crash is resent under its nonce only within Discord's nonce window. (Giving or
#: taking a role, or editing a post, can be repeated harmlessly.)
MESSAGES: tuple[DeliveryAction, ...] = (DM_REFUND, POST_ORDER, DM_FULFILLED, DM_DENIED, DM_CANCELLED, DM_REFUNDED)

# Why a delivery cannot be done (codes: the Discord layer words them).
ROLE_DELETED = "role_deleted"
ROLE_ABOVE_BOT = "role_above_bot"
ROLE_MANAGED = "role_managed"  # @everyone, or a role an integration manages: nobody can be given it
NO_MANAGE_ROLES = "no_manage_roles"
MISSING_PERMISSIONS = "missing_permissions"  # Discord answered 403 50013
REFUSED = "refused"  # another 4xx: Discord will not do it, however often we ask
MEMBER_LEFT = "member_left"
GUILD_GONE = "guild_gone"  # the bot is no longer in the server
DM_CLOSED = "dm_closed"
CHANNEL_GONE = "channel_gone"  # the fulfilment channel (or the post's channel) no longer exists
NO_CHANNEL_ACCESS = "no_channel_access"  # the bot may not see or post in that channel
POST_GONE = "post_gone"  # the post to edit was deleted
GAVE_UP = "gave_up"  # passing failures for longer than GIVE_UP_AFTER
UNKNOWN = "unknown"  # a DM interrupted by a crash too long ago to resend safely (never twice)

#: Seconds to wait before attempt n+1 after n failed attempts (the last value repeats).
BACKOFF: tuple[int, ...] = (5, 15, 30, 60, 120, 300, 600, 1800, 3600)
#: Passing failures for this long after the order make a delivery impossible.
GIVE_UP_AFTER = 24 * 3600

#: Plain words for each reason, completing "… because <reason>".
REASONS = {
    ROLE_DELETED: "the item's role no longer exists",
    ROLE_ABOVE_BOT: "the role is above the bot's highest role",
    ROLE_MANAGED: "the role is @everyone or managed by an integration",
    NO_MANAGE_ROLES: "the bot lacks the Manage Roles permission",
    MISSING_PERMISSIONS: "Discord refused to give the role (Missing Permissions)",
    REFUSED: "Discord refused to give the role",
    MEMBER_LEFT: "the member is no longer in the server",
    GUILD_GONE: "the bot is no longer in the server",
    DM_CLOSED: "the member does not accept DMs from the bot",
    CHANNEL_GONE: "the channel no longer exists",
    NO_CHANNEL_ACCESS: "the bot cannot post in the channel",
    POST_GONE: "the post was deleted",
    GAVE_UP: "Discord kept failing to give the role",
    UNKNOWN: "the bot stopped while sending it",
}


def describe(reason: str | None) -> str:
    return REASONS.get(reason or "", reason or "of an unknown problem")


def backoff(attempts: int) -> int:
    """Seconds until the next try after `attempts` failed ones (1 → 5 s, 2 → 15 s, …, then hourly)."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


def gives_up(created_at: int, now: int) -> bool:
    """True once a delivery has failed for longer than GIVE_UP_AFTER: it is then impossible."""
    return now - created_at >= GIVE_UP_AFTER


def nothing_left_to_do(action: str, reason: str) -> bool:
    """An impossible removal whose role or member is gone has done its job: the member does not
    have the role; an edit of a post that is gone (or never made) has nothing to edit. (A DM, a
    post or a role that cannot be given has not.)"""
    if action == EDIT_POST:
        return reason in (POST_GONE, CHANNEL_GONE, GUILD_GONE)
    return action == REMOVE_ROLE and reason in (ROLE_DELETED, MEMBER_LEFT, GUILD_GONE)


def sends_message(action: str) -> bool:
    """A new message (a DM, a post): never sent twice (see MESSAGES)."""
    return action in MESSAGES


def refunds_order(action: str) -> bool:
    """An order whose role cannot be given is refunded; other impossible deliveries are not."""
    return action == ADD_ROLE
