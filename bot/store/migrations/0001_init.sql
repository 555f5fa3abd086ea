-- Promo Balance schema, version 1.
-- Times are integer Unix seconds (UTC). Amounts are integer minor units, 1 .. 10^12 per operation.
-- The database guards the invariants too: CHECKs, foreign keys, unique keys, append-only entries.

CREATE TABLE guild_settings (
    guild_id                   INTEGER PRIMARY KEY,
    currency_name              TEXT    NOT NULL DEFAULT 'credits',
    currency_symbol            TEXT    NOT NULL DEFAULT '',
    decimals                   INTEGER NOT NULL DEFAULT 0 CHECK (decimals IN (0, 2)),
    timezone                   TEXT    NOT NULL DEFAULT 'UTC',
    reminder_leads             TEXT    NOT NULL DEFAULT '604800,86400',  -- seconds, descending
    mod_role_id                INTEGER,
    audit_channel_id           INTEGER,
    promo_excluded_categories  TEXT    NOT NULL DEFAULT '[]'             -- JSON list of categories
);

CREATE TABLE accounts (
    guild_id           INTEGER NOT NULL,
    user_id            INTEGER NOT NULL,
    reminders_enabled  INTEGER NOT NULL DEFAULT 1 CHECK (reminders_enabled IN (0, 1)),
    dm_closed_at       INTEGER,            -- Discord answered 50007: do not retry
    created_at         INTEGER NOT NULL,
    PRIMARY KEY (guild_id, user_id)
) WITHOUT ROWID;

CREATE TABLE lots (
    id                INTEGER PRIMARY KEY,
    guild_id          INTEGER NOT NULL,
    user_id           INTEGER NOT NULL,
    kind              TEXT    NOT NULL CHECK (kind IN ('gift', 'promo')),
    original          INTEGER NOT NULL CHECK (original BETWEEN 1 AND 1000000000000),
    remaining         INTEGER NOT NULL CHECK (remaining BETWEEN 0 AND original),
    starts_at         INTEGER NOT NULL,
    expires_at        INTEGER CHECK (expires_at IS NULL OR expires_at > starts_at),
    categories        TEXT,               -- JSON allow-list; NULL = any eligible category
    one_time          INTEGER NOT NULL DEFAULT 0 CHECK (one_time IN (0, 1)),
    source            TEXT    NOT NULL CHECK (source IN ('grant', 'promo_code', 'gift_card')),
    source_ref        TEXT,
    memo              TEXT,
    created_by        INTEGER,
    created_at        INTEGER NOT NULL,
    status            TEXT    NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'spent', 'expired', 'forfeited', 'voided')),
    next_reminder_at  INTEGER,            -- when the next lead window opens; NULL = none left
    revoked_at        INTEGER,            -- the whole lot was revoked: a refund never refills it
    CHECK (status <> 'active' OR remaining > 0),
    FOREIGN KEY (guild_id, user_id) REFERENCES accounts (guild_id, user_id)
);
-- A member's lots (balance, checkout, revoke). Not keyed on status: spending or expiring a lot then
-- leaves this index alone, which halves the pages an expiry sweep of scattered lots writes.
CREATE INDEX lots_member ON lots (guild_id, user_id);
-- The expiry sweep and the reminder query only ever look at active lots.
CREATE INDEX lots_due_expiry ON lots (expires_at) WHERE status = 'active' AND expires_at IS NOT NULL;
-- Covering: finding 10,000 due reminders reads this index in order, not 10,000 scattered lots
-- (status is listed so SQLite sees the index as covering; the WHERE alone does not count).
CREATE INDEX lots_due_reminder ON lots (next_reminder_at, guild_id, user_id, expires_at, status)
    WHERE status = 'active' AND next_reminder_at IS NOT NULL;

CREATE TABLE shop_items (
    id                INTEGER PRIMARY KEY,
    guild_id          INTEGER NOT NULL,
    name              TEXT    NOT NULL,
    name_key          TEXT    NOT NULL,   -- casefolded name: unique per guild
    description       TEXT    NOT NULL DEFAULT '',
    price             INTEGER NOT NULL CHECK (price BETWEEN 1 AND 1000000000000),
    category          TEXT    NOT NULL,
    stock             INTEGER CHECK (stock IS NULL OR stock >= 0),
    role_id           INTEGER,
    per_member_limit  INTEGER CHECK (per_member_limit IS NULL OR per_member_limit >= 1),
    active            INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at        INTEGER NOT NULL,
    UNIQUE (guild_id, name_key)
);

CREATE TABLE orders (
    id               INTEGER PRIMARY KEY,
    guild_id         INTEGER NOT NULL,
    user_id          INTEGER NOT NULL,
    item_id          INTEGER NOT NULL REFERENCES shop_items (id),
    item_name        TEXT    NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity >= 1),
    unit_price       INTEGER NOT NULL CHECK (unit_price >= 1),
    total            INTEGER NOT NULL CHECK (total = unit_price * quantity),
    promo_applied    INTEGER NOT NULL CHECK (promo_applied >= 0),
    gift_applied     INTEGER NOT NULL CHECK (gift_applied >= 0),
    forfeited        INTEGER NOT NULL DEFAULT 0 CHECK (forfeited >= 0),
    role_id          INTEGER,
    status           TEXT    NOT NULL DEFAULT 'completed' CHECK (status IN ('completed', 'refunded')),
    created_at       INTEGER NOT NULL,
    refunded_at      INTEGER,
    refund_reason    TEXT,
    CHECK (promo_applied + gift_applied = total),
    FOREIGN KEY (guild_id, user_id) REFERENCES accounts (guild_id, user_id)
);
CREATE INDEX orders_member ON orders (guild_id, user_id, id);
CREATE INDEX orders_item_member ON orders (item_id, user_id, status);

-- Append-only: the triggers below refuse UPDATE and DELETE.
CREATE TABLE entries (
    id               INTEGER PRIMARY KEY,
    guild_id         INTEGER NOT NULL,
    user_id          INTEGER NOT NULL,
    lot_id           INTEGER NOT NULL REFERENCES lots (id),
    type             TEXT    NOT NULL
                     CHECK (type IN ('grant', 'spend', 'forfeit', 'expire', 'void', 'refund', 'expiry_change')),
    amount           INTEGER NOT NULL,
    order_id         INTEGER REFERENCES orders (id),
    actor_id         INTEGER,
    reason           TEXT,
    created_at       INTEGER NOT NULL,
    idempotency_key  TEXT,
    CHECK (
        (type IN ('grant', 'refund') AND amount > 0)
        OR (type IN ('spend', 'forfeit', 'expire', 'void') AND amount < 0)
        OR (type = 'expiry_change' AND amount = 0)
    )
);
CREATE INDEX entries_member ON entries (guild_id, user_id, id);
CREATE INDEX entries_lot ON entries (lot_id);
CREATE INDEX entries_order ON entries (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX entries_guild_time ON entries (guild_id, created_at);

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;

-- The same key twice applies once and returns the first result.
CREATE TABLE idempotency (
    key         TEXT    PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    operation   TEXT    NOT NULL,
    result      TEXT    NOT NULL,   -- JSON
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
-- Keys are pruned after a month (an interaction can only be answered for 15 minutes).
CREATE INDEX idempotency_age ON idempotency (created_at);

CREATE TABLE promo_codes (
    id               INTEGER PRIMARY KEY,
    guild_id         INTEGER NOT NULL,
    code             TEXT    NOT NULL,   -- as the moderator wrote it (upper case)
    code_key         TEXT    NOT NULL,   -- normalised: what redemption looks up
    amount           INTEGER NOT NULL CHECK (amount BETWEEN 1 AND 1000000000000),
    max_uses         INTEGER CHECK (max_uses IS NULL OR max_uses >= 1),
    uses             INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
    per_member       INTEGER NOT NULL DEFAULT 1 CHECK (per_member >= 1),
    redeem_by        INTEGER,
    credit_days      INTEGER CHECK (credit_days IS NULL OR credit_days >= 1),
    credit_expires   INTEGER,
    categories       TEXT,
    one_time         INTEGER NOT NULL DEFAULT 0 CHECK (one_time IN (0, 1)),
    role_id          INTEGER,
    min_member_days  INTEGER CHECK (min_member_days IS NULL OR min_member_days >= 0),
    active           INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_by       INTEGER,
    created_at       INTEGER NOT NULL,
    CHECK (max_uses IS NULL OR uses <= max_uses),
    CHECK (credit_days IS NULL OR credit_expires IS NULL),
    UNIQUE (guild_id, code_key)
);

CREATE TABLE promo_redemptions (
    id          INTEGER PRIMARY KEY,
    code_id     INTEGER NOT NULL REFERENCES promo_codes (id),
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    lot_id      INTEGER NOT NULL UNIQUE REFERENCES lots (id),
    created_at  INTEGER NOT NULL
);
CREATE INDEX promo_redemptions_member ON promo_redemptions (code_id, user_id);

CREATE TABLE gift_cards (
    id           INTEGER PRIMARY KEY,
    guild_id     INTEGER NOT NULL,
    code_hash    TEXT    NOT NULL UNIQUE,   -- never the code itself
    last4        TEXT    NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount BETWEEN 1 AND 1000000000000),
    claim_by     INTEGER,
    status       TEXT    NOT NULL DEFAULT 'unredeemed' CHECK (status IN ('unredeemed', 'redeemed', 'voided')),
    issued_by    INTEGER,
    created_at   INTEGER NOT NULL,
    redeemed_by  INTEGER,
    redeemed_at  INTEGER,
    lot_id       INTEGER UNIQUE REFERENCES lots (id),
    CHECK ((status = 'redeemed') = (lot_id IS NOT NULL))
);
CREATE INDEX gift_cards_guild_last4 ON gift_cards (guild_id, last4);

-- Wrong codes, for the rate limit (5 in 15 minutes).
CREATE TABLE failed_redemptions (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX failed_redemptions_member ON failed_redemptions (guild_id, user_id, at);

-- Each (lot, lead time) is reminded at most once, across restarts. A row is claimed as 'pending'
-- before the DM is sent (with a Discord nonce), then settled; 'retry' waits for its backoff.
-- Settled: sent, dm_closed (Discord 50007), opted_out, failed (gave up), unknown (crashed while
-- sending longer ago than Discord's nonce window: not resent, so never twice).
CREATE TABLE reminders (
    lot_id        INTEGER NOT NULL REFERENCES lots (id),
    lead_seconds  INTEGER NOT NULL,
    status        TEXT    NOT NULL
                  CHECK (status IN ('pending', 'retry', 'sent', 'dm_closed', 'opted_out', 'failed', 'unknown')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    nonce         TEXT,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (lot_id, lead_seconds)
) WITHOUT ROWID;

-- Moderator actions (the audit trail), also posted to the audit channel when one is set.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    actor_id    INTEGER,
    action      TEXT    NOT NULL,
    details     TEXT    NOT NULL,   -- JSON
    created_at  INTEGER NOT NULL
);
CREATE INDEX audit_log_guild ON audit_log (guild_id, id);

-- Recurring grants to a role.
CREATE TABLE schedules (
    id           INTEGER PRIMARY KEY,
    guild_id     INTEGER NOT NULL,
    role_id      INTEGER NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount BETWEEN 1 AND 1000000000000),
    rule         TEXT    NOT NULL,
    valid_days   INTEGER CHECK (valid_days IS NULL OR valid_days >= 1),
    categories   TEXT,
    kind         TEXT    NOT NULL DEFAULT 'promo' CHECK (kind IN ('gift', 'promo')),
    next_run_at  INTEGER NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_by   INTEGER,
    created_at   INTEGER NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE active = 1;

-- Key/value state of the bot itself (e.g. the hash of the last synced command tree).
CREATE TABLE bot_state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;
