-- Promo Balance schema, version 4: delivery and fulfilment (SPEC §3 "Delivery and fulfilment").
-- An item is delivered `instant` (as before), by `staff` (its orders wait in a queue until a
-- moderator fulfils or denies them) or as a secret `code` from the item's own list. Existing items
-- become `instant`, existing orders keep their status and every id.

ALTER TABLE shop_items ADD COLUMN delivery TEXT NOT NULL DEFAULT 'instant'
    CHECK (delivery IN ('instant', 'staff', 'code'));

-- Where new staff orders are posted, with Fulfil and Deny buttons (NULL: nowhere, /fulfil queue only).
ALTER TABLE guild_settings ADD COLUMN fulfilment_channel_id INTEGER;

-- SQLite cannot change a CHECK in place: the orders table is rebuilt. Entries, deliveries and
-- (below) item codes point at orders; with the foreign keys deferred, dropping the table leaves
-- them waiting for their orders until the end of the transaction, and inserting the same rows
-- back, with the same ids, satisfies them again before the commit checks.
PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE orders_before_v4 AS SELECT * FROM orders;
DROP TABLE orders;

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
    -- completed: instant and code orders; pending -> fulfilled: staff orders; cancelled: by the
    -- member while pending; refunded: by a moderator (a denied staff order too), or automatically.
    status           TEXT    NOT NULL DEFAULT 'completed'
                     CHECK (status IN ('completed', 'pending', 'fulfilled', 'cancelled', 'refunded')),
    created_at       INTEGER NOT NULL,
    refunded_at      INTEGER,
    refund_reason    TEXT,
    -- The item's delivery when it was bought (an item's delivery never changes).
    delivery         TEXT    NOT NULL DEFAULT 'instant' CHECK (delivery IN ('instant', 'staff', 'code')),
    acted_by         INTEGER,            -- who last changed the status (NULL: the bot itself)
    acted_at         INTEGER,            -- when
    note             TEXT,               -- the fulfil note or the deny reason, for the member
    post_channel_id  INTEGER,            -- the order's post in the fulfilment channel
    post_message_id  INTEGER,
    CHECK (promo_applied + gift_applied = total),
    CHECK (status IN ('completed', 'refunded') OR delivery = 'staff'),
    CHECK (status <> 'completed' OR delivery <> 'staff'),
    CHECK (status <> 'pending' OR (acted_by IS NULL AND acted_at IS NULL AND note IS NULL)),
    CHECK ((post_channel_id IS NULL) = (post_message_id IS NULL)),
    FOREIGN KEY (guild_id, user_id) REFERENCES accounts (guild_id, user_id)
);

INSERT INTO orders (id, guild_id, user_id, item_id, item_name, quantity, unit_price, total, promo_applied,
                    gift_applied, forfeited, role_id, status, created_at, refunded_at, refund_reason, acted_at)
SELECT id, guild_id, user_id, item_id, item_name, quantity, unit_price, total, promo_applied,
       gift_applied, forfeited, role_id, status, created_at, refunded_at, refund_reason, refunded_at
FROM orders_before_v4 ORDER BY id;
DROP TABLE orders_before_v4;

CREATE INDEX orders_member ON orders (guild_id, user_id, id);
CREATE INDEX orders_item_member ON orders (item_id, user_id, status);
-- The fulfilment queue, oldest first.
CREATE INDEX orders_pending ON orders (guild_id, id) WHERE status = 'pending';

-- The deliveries gain the actions of fulfilment (a CHECK again: rebuilt the same way). A post to
-- the fulfilment channel names its channel as it was set when the order was placed.
CREATE TEMP TABLE deliveries_before_v4 AS SELECT * FROM deliveries;
DROP TABLE deliveries;

CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    guild_id     INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    -- add_role / remove_role: give or take back role_id; dm_refund: tell the member their order
    -- was refunded automatically (why: reason); post_order: post a new staff order to channel_id;
    -- edit_post: show on that post who acted and when; dm_fulfilled, dm_denied, dm_cancelled,
    -- dm_refunded: tell the member what happened to their order.
    action       TEXT    NOT NULL CHECK (action IN ('add_role', 'remove_role', 'dm_refund', 'post_order',
                                                    'edit_post', 'dm_fulfilled', 'dm_denied', 'dm_cancelled',
                                                    'dm_refunded')),
    role_id      INTEGER,
    status       TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'done', 'failed', 'cancelled')),
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    due_at       INTEGER NOT NULL,
    claimed_by   TEXT,
    claimed_at   INTEGER,
    reason       TEXT,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    settled_at   INTEGER,
    channel_id   INTEGER,
    CHECK (action NOT IN ('add_role', 'remove_role') OR role_id IS NOT NULL),
    CHECK (action <> 'post_order' OR channel_id IS NOT NULL),
    CHECK (status = 'pending' OR claimed_by IS NULL),
    UNIQUE (order_id, action)
);

INSERT INTO deliveries (id, guild_id, user_id, order_id, action, role_id, status, attempts, due_at, claimed_by,
                        claimed_at, reason, last_error, created_at, settled_at)
SELECT id, guild_id, user_id, order_id, action, role_id, status, attempts, due_at, claimed_by,
       claimed_at, reason, last_error, created_at, settled_at
FROM deliveries_before_v4 ORDER BY id;
DROP TABLE deliveries_before_v4;

CREATE INDEX deliveries_due ON deliveries (due_at) WHERE status = 'pending';
CREATE INDEX deliveries_claimed ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;

-- The secret codes of a `code` item: stored so they can be delivered, shown only to their buyer,
-- never logged or exported. order_id is the order that took the code (NULL: unused). The item's
-- stock is its count of unused codes, kept in the same transactions.
CREATE TABLE item_codes (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    item_id     INTEGER NOT NULL REFERENCES shop_items (id),
    code        TEXT    NOT NULL CHECK (length(code) BETWEEN 1 AND 200),
    order_id    INTEGER UNIQUE REFERENCES orders (id),
    created_at  INTEGER NOT NULL,
    UNIQUE (item_id, code)
);
-- The next unused code of an item, in upload order.
CREATE INDEX item_codes_unused ON item_codes (item_id, id) WHERE order_id IS NULL;
