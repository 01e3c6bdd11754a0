-- The runs on one target (an alert's event, an approval): every redraw of an alert card reads the latest run of each
-- action on its event to show it (running since…, done, failed).
CREATE INDEX action_runs_target ON action_runs (target, started_at_ms);
