-- Approvals (issue 11): a request people decide in Slack. `version` is bumped by every commit, so two replicas (or
-- a double click) deciding on the same version commit once; the loser reads again and decides again.
CREATE TABLE approvals (
    id              TEXT PRIMARY KEY NOT NULL,
    idempotency_key TEXT UNIQUE,
    request         TEXT NOT NULL,
    requester       TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
    required        INTEGER NOT NULL,
    allow_self      INTEGER NOT NULL,
    team            TEXT NOT NULL,
    channel         TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL,
    decided_at_ms   INTEGER,
    version         INTEGER NOT NULL DEFAULT 0,
    card_item_id    INTEGER
);
-- The expiry timer reads pending approvals by when they expire.
CREATE INDEX approvals_due ON approvals (expires_at_ms) WHERE state = 'pending';

-- The decisions that counted, in order.
CREATE TABLE approval_decisions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    approval_id TEXT NOT NULL,
    actor       TEXT NOT NULL,
    verdict     TEXT NOT NULL,
    reason      TEXT,
    at_ms       INTEGER NOT NULL
);
CREATE INDEX approval_decisions_of ON approval_decisions (approval_id, id);
