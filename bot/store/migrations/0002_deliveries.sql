-- Promo Balance schema, version 2: what an order must still do in Discord (SPEC §3).
-- A purchase that gives a role, and a refund that takes one back, record it here in their own
-- transaction; the delivery worker carries it out from the database, so a crash, a restart or a
-- rate limit between payment and delivery delays it, never loses it.

CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    guild_id     INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    -- add_role / remove_role: give or take back role_id; dm_refund: tell the member their order
    -- was refunded automatically (why: reason).
    action       TEXT    NOT NULL CHECK (action IN ('add_role', 'remove_role', 'dm_refund')),
    role_id      INTEGER,
    -- pending: still to do (due_at says when: its backoff); done; failed (impossible, or given up:
    -- an add_role that failed refunded its order); cancelled (its order was refunded first).
    status       TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'done', 'failed', 'cancelled')),
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    due_at       INTEGER NOT NULL,
    -- The worker that is carrying it out right now (one token per bot process). Claiming sets it
    -- atomically, so two ticks never carry out one delivery; a worker that starts releases the
    -- claims of earlier processes (a crash), since exactly one process serves a database (§5).
    claimed_by   TEXT,
    claimed_at   INTEGER,
    reason       TEXT,               -- why it failed (a code, see bot/ledger/delivery.py)
    last_error   TEXT,               -- the last passing failure, for the log and moderators
    created_at   INTEGER NOT NULL,
    settled_at   INTEGER,
    CHECK ((action = 'dm_refund') OR role_id IS NOT NULL),
    CHECK (status = 'pending' OR claimed_by IS NULL),
    UNIQUE (order_id, action)
);
CREATE INDEX deliveries_due ON deliveries (due_at) WHERE status = 'pending';
CREATE INDEX deliveries_claimed ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;
