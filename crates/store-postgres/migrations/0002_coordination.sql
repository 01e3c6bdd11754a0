-- Shared rate limiting (GCRA): one row per key. A row whose tat_ms and blocked_until_ms are in the past behaves
-- exactly like no row, so idle rows can be pruned. last_allowed is the decision of the latest take_rate, returned by
-- the same statement that made it.
CREATE TABLE rate_limits (
    key              TEXT PRIMARY KEY NOT NULL,
    tat_ms           BIGINT NOT NULL,
    blocked_until_ms BIGINT NOT NULL DEFAULT 0,
    last_allowed     BOOLEAN NOT NULL DEFAULT FALSE
);

-- Leader leases: who runs the once-per-fleet work of a role, until when.
CREATE TABLE leaders (
    role     TEXT PRIMARY KEY NOT NULL,
    owner    TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);

-- Exactly-once keys, remembered until expires_at_ms.
CREATE TABLE once_keys (
    key           TEXT PRIMARY KEY NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX once_keys_expiry ON once_keys (expires_at_ms);

-- The hash-chained audit log. Ids are assigned as head + 1 (no gaps), so a deleted row shows as a gap.
CREATE TABLE audit_log (
    id        BIGINT PRIMARY KEY NOT NULL,
    at_ms     BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    team      TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    result    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);

-- The chain head: the last appended id and hash. Appends lock this one row, so the chain never forks.
CREATE TABLE audit_head (
    one       INTEGER PRIMARY KEY NOT NULL CHECK (one = 1),
    last_id   BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO audit_head (one, last_id, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
