-- The alert lifecycle keeps what the source says about an alert (issue 15, defects 1 and 4):
-- started_at_ms: when the source says the alert's latest occurrence started (Alertmanager's startsAt); the same
--   start again is that occurrence re-sent, not a new one.
-- first_started_at_ms: the source's start of the first occurrence, and ended_at_ms its end (endsAt of the resolve):
--   a card's duration is the source's, not the time between two deliveries.
-- last_event_id: the latest event that continued or resolved the alert; a deployment's card shows its final state.
ALTER TABLE alerts ADD COLUMN started_at_ms INTEGER;
ALTER TABLE alerts ADD COLUMN first_started_at_ms INTEGER;
ALTER TABLE alerts ADD COLUMN ended_at_ms INTEGER;
ALTER TABLE alerts ADD COLUMN last_event_id TEXT;
