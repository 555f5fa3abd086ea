"""How long and how many: every limit on what the bot accepts, in one place.

The domain refuses input over these limits with a clear message, and the Discord layer gives the
same numbers to Discord as each option's ``max_length``, so Discord's client stops the typing
first. Messages are built to fit Discord's limits for the longest and most of everything allowed
here, so raising a number here means re-checking the worst-case tests in tests/cogs.
"""

from __future__ import annotations

#: A typed amount, like ``1,000,000.00`` (the longest valid one has 17 characters).
AMOUNT_INPUT = 64
#: A typed duration or date, like ``30d`` or ``2026-12-31T18:00+02:00``.
WHEN_INPUT = 100
#: A moderator's reason or memo, shown in histories, the audit trail and the export.
REASON = 200
#: A shop item's name.
ITEM_NAME = 100
#: A shop item's description, shown in /shop.
ITEM_DESCRIPTION = 500
#: One shop category's name.
CATEGORY = 50
#: Categories on one lot, promo code or recurring grant.
CATEGORIES_PER_LIST = 10
#: The comma-separated text of such a list: ten of the longest names with ", " between them.
CATEGORIES_INPUT = CATEGORIES_PER_LIST * (CATEGORY + 2)
#: Categories a server may exclude from promotional credit.
EXCLUDED_CATEGORIES = 25
#: A five-field cron rule, like ``0 12 1 * *`` or ``0 9 * * mon-fri``.
CRON_RULE = 100
#: Reminder lead times, like ``7d,1d`` (at most ten of them).
LEAD_TIMES_INPUT = 100
#: What a member types into /redeem: a gift card is 19 characters, a promo code at most 32 plus
#: the spaces and dashes people paste with it.
REDEEM_INPUT = 64
#: An IANA timezone name, like ``America/Argentina/ComodRivadavia``.
TIMEZONE = 64
#: A gift card's last 4 characters as typed into /giftcard void, like ``…7KQ2`` or ``7kq-2``.
GIFT_LAST4_INPUT = 9
#: Codes in one upload to a code item (more refuses the whole upload).
CODES_PER_UPLOAD = 1_000
#: One code of a code item (a longer one refuses the whole upload: a code is never cut short).
ITEM_CODE = 200
#: The file of one upload, in bytes (its text in characters): 1,000 of the longest codes with their
#: line ends are ~200 KB; the rest is room for blank lines and spaces around the codes.
CODE_FILE_BYTES = 1_048_576
#: A moderator's note when fulfilling a staff order (shown to the member, on the post and in /orders).
ORDER_NOTE = 200
