-- Noise control: groups of alerts per route and lane (group_by), flushed by one leader per their timings
-- (group_wait, group_interval, repeat_interval). `due_at_ms` is when the flusher should look at the group next
-- (NULL: not before a change); `version` is bumped by every change, so a flush that raced a change keeps it due.
CREATE TABLE alert_groups (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    key             TEXT NOT NULL UNIQUE,
    rule            TEXT NOT NULL,
    lane            TEXT NOT NULL,
    team            TEXT NOT NULL,
    channel         TEXT NOT NULL,
    template        TEXT NOT NULL,
    labels          TEXT NOT NULL,
    first_event_id  TEXT NOT NULL,
    wait_ms         INTEGER NOT NULL,
    interval_ms     INTEGER NOT NULL,
    repeat_ms       INTEGER NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    changed_at_ms   INTEGER,
    due_at_ms       INTEGER,
    version         INTEGER NOT NULL,
    events          INTEGER NOT NULL,
    notified_at_ms  INTEGER,
    notified_firing INTEGER NOT NULL DEFAULT 0,
    post_item_id    INTEGER,
    digested_at_ms  INTEGER
);
CREATE INDEX alert_groups_due ON alert_groups (due_at_ms) WHERE due_at_ms IS NOT NULL;
CREATE INDEX alert_groups_rule ON alert_groups (rule);
CREATE INDEX alert_groups_post ON alert_groups (post_item_id) WHERE post_item_id IS NOT NULL;
CREATE INDEX alert_groups_first_event ON alert_groups (first_event_id);

CREATE TABLE group_alerts (
    group_id INTEGER NOT NULL,
    alert_id INTEGER NOT NULL,
    PRIMARY KEY (group_id, alert_id)
);
CREATE INDEX group_alerts_alert ON group_alerts (alert_id);

-- Events per route per second, so the storm guard reads a route's rate over its window in one query, whichever
-- replica leads and however recently it started.
CREATE TABLE route_events (
    rule      TEXT NOT NULL,
    bucket_ms INTEGER NOT NULL,
    events    INTEGER NOT NULL,
    PRIMARY KEY (rule, bucket_ms)
);
CREATE INDEX route_events_bucket ON route_events (bucket_ms);
