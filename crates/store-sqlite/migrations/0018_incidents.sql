-- Incidents (issue 13). `declare_key` is unique: declaring twice (a double click, two reactions, a Slack retry, two
-- replicas) finds the first incident. A resolved incident's key is set aside (`<key>#<id>`) so the same title
-- may be declared again later. `version` guards every commit (as approvals do). The card and the announcement are
-- outbox items; their sent channel and ts are read from the outbox.
CREATE TABLE incidents (
    id                   TEXT PRIMARY KEY,
    declare_key          TEXT NOT NULL UNIQUE,
    kind                 TEXT NOT NULL,
    title                TEXT NOT NULL,
    sev                  INTEGER NOT NULL,
    status               TEXT NOT NULL,
    channel_name         TEXT NOT NULL,
    channel_id           TEXT,
    declarer             TEXT NOT NULL,
    roles                TEXT NOT NULL,
    origin               TEXT NOT NULL,
    context              TEXT NOT NULL,
    created_at_ms        INTEGER NOT NULL,
    resolved_at_ms       INTEGER,
    remind_at_ms         INTEGER,
    version              INTEGER NOT NULL DEFAULT 0,
    card_item_id         INTEGER,
    announcement_item_id INTEGER
);
CREATE INDEX incidents_channel ON incidents (channel_id);
CREATE INDEX incidents_remind ON incidents (remind_at_ms);

-- The timeline, append-only: (incident, seq) orders it whatever the replicas' clocks say.
CREATE TABLE incident_timeline (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    seq         INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    author      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
);
