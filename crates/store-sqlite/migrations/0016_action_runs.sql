-- Runs of `[[action]]`s (issue 11): one row per run, `running` until its outgoing call is answered (`done`) or
-- dead-lettered (`failed`). At most one run of an action on one target is running at a time; once it ended the
-- same action may run again.
CREATE TABLE action_runs (
    id             TEXT PRIMARY KEY NOT NULL,
    action         TEXT NOT NULL,
    target         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    team           TEXT NOT NULL,
    channel        TEXT NOT NULL,
    ts             TEXT NOT NULL,
    reply          TEXT NOT NULL,
    card           TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    status         INTEGER,
    result         TEXT,
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER
);
CREATE UNIQUE INDEX action_runs_one_running ON action_runs (action, target) WHERE state = 'running';
