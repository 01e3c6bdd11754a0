-- Silences: mute events matching every matcher (JSON array of {name, op, value}) while
-- starts_at_ms <= now < ends_at_ms and not expired early. Pruned once ended (COALESCE(expired_at_ms, ends_at_ms))
-- longer ago than retention.
CREATE TABLE silences (
    id            TEXT PRIMARY KEY NOT NULL,
    matchers      TEXT NOT NULL,
    starts_at_ms  INTEGER NOT NULL,
    ends_at_ms    INTEGER NOT NULL,
    author        TEXT NOT NULL,
    comment       TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expired_at_ms INTEGER
);
CREATE INDEX silences_ends ON silences (ends_at_ms);

-- One counter bumped in the same transaction as every silence change, so caches refresh with one cheap read.
CREATE TABLE silences_version (
    one     INTEGER PRIMARY KEY NOT NULL CHECK (one = 1),
    version INTEGER NOT NULL
);
INSERT INTO silences_version (one, version) VALUES (1, 0);

-- Decisions on alerts (ack, resolve), keyed by the alert's first event: the primary key makes the first click win.
CREATE TABLE alert_actions (
    event_id TEXT NOT NULL,
    action   TEXT NOT NULL,
    actor    TEXT NOT NULL,
    at_ms    INTEGER NOT NULL,
    PRIMARY KEY (event_id, action)
);
