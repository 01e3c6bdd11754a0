-- Events as accepted, with their fate (JSON of `Fate`).
CREATE TABLE events (
    id             TEXT PRIMARY KEY NOT NULL,
    received_at_ms INTEGER NOT NULL,
    source         TEXT NOT NULL,
    body           TEXT NOT NULL,
    fate           TEXT NOT NULL
);
CREATE INDEX events_received ON events (received_at_ms);

-- The durable outbox: one row per Slack call. `id` order is send order within a lane.
CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id           TEXT,
    lane               TEXT NOT NULL,
    team               TEXT NOT NULL,
    channel            TEXT NOT NULL,
    method             TEXT NOT NULL,
    args               TEXT NOT NULL,
    ref_post           INTEGER NOT NULL DEFAULT 0,
    ref_item_id        INTEGER,
    state              TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    created_at_ms      INTEGER NOT NULL,
    next_attempt_at_ms INTEGER NOT NULL,
    last_error         TEXT,
    sent_channel       TEXT,
    sent_ts            TEXT,
    sent_at_ms         INTEGER,
    dead_reason        TEXT,
    dead_at_ms         INTEGER
);
CREATE INDEX outbox_lane_pending ON outbox (lane, id) WHERE state = 'pending';
CREATE INDEX outbox_event ON outbox (event_id);
CREATE INDEX outbox_dead ON outbox (dead_at_ms) WHERE state = 'dead';
CREATE INDEX outbox_sent ON outbox (sent_at_ms) WHERE state = 'sent';
CREATE INDEX outbox_ref ON outbox (ref_item_id) WHERE ref_item_id IS NOT NULL;

-- One row per lane, kept in step with the outbox in the same transactions, so claiming is cheap with a large
-- backlog: `head_id` is the lane's first pending item (NULL when none).
CREATE TABLE lanes (
    lane           TEXT PRIMARY KEY NOT NULL,
    head_id        INTEGER,
    owner          TEXT,
    lease_until_ms INTEGER NOT NULL DEFAULT 0
);

-- Dedup state: at most one open alert per key.
CREATE TABLE alerts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key      TEXT NOT NULL,
    first_event_id TEXT NOT NULL,
    count          INTEGER NOT NULL,
    first_seen_ms  INTEGER NOT NULL,
    last_seen_ms   INTEGER NOT NULL,
    closed_at_ms   INTEGER
);
CREATE UNIQUE INDEX alerts_open_key ON alerts (dedup_key) WHERE closed_at_ms IS NULL;
CREATE INDEX alerts_first_event ON alerts (first_event_id);
CREATE INDEX alerts_closed ON alerts (closed_at_ms) WHERE closed_at_ms IS NOT NULL;

-- The alert's original post per lane, which later updates (`ref_post`) refer to.
CREATE TABLE alert_posts (
    alert_id INTEGER NOT NULL,
    lane     TEXT NOT NULL,
    item_id  INTEGER NOT NULL,
    PRIMARY KEY (alert_id, lane)
);
CREATE INDEX alert_posts_item ON alert_posts (item_id);
