-- A reminder claimed 'pending' names the run (one start of the bot, a random token) that claimed
-- it. A claim of the run still going is a send in progress, never to be repeated; only a claim of
-- an earlier run is a send that crashed. (On SQLite one bot process holds the database, so a
-- claim of another run is never a live one.) NULL: claimed before this column existed.
ALTER TABLE reminders ADD COLUMN claimed_by TEXT;

-- A wrong code is recorded under the idempotency key of the interaction that tried it: one
-- attempt counts once toward the rate limit, however often Discord delivers it (SPEC §4).
-- NULL: no key (the CLI, tests), every attempt counts.
ALTER TABLE failed_redemptions ADD COLUMN key TEXT;
CREATE UNIQUE INDEX failed_redemptions_key ON failed_redemptions (key) WHERE key IS NOT NULL;
