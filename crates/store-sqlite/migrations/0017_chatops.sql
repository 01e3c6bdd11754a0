-- ChatOps schedules (issue 12): one row per (schedule, due minute), written by whichever replica claims the minute
-- first, so a scheduled report runs once however many replicas tick. `outcome` is 'run' or 'skipped' (a run missed
-- while Sluice was down, with `missed = "skip"`); the latest row is where the next tick looks from.
CREATE TABLE schedule_runs (
    schedule      TEXT NOT NULL,
    due_ms        INTEGER NOT NULL,
    outcome       TEXT NOT NULL,
    claimed_by    TEXT NOT NULL,
    claimed_at_ms INTEGER NOT NULL,
    PRIMARY KEY (schedule, due_ms)
);
