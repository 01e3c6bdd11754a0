-- Inhibition keys held by alerts (see `Inhibit`): while its alert is open and was last seen at most window_ms ago, a
-- key mutes the events that check it. Deleted when the alert closes (a reopen records them again) and with pruned
-- alerts. The primary key serves the lookup by key.
CREATE TABLE inhibit_keys (
    key        TEXT NOT NULL,
    alert_id   INTEGER NOT NULL,
    both_sides INTEGER NOT NULL,
    window_ms  INTEGER NOT NULL,
    PRIMARY KEY (key, alert_id)
);
CREATE INDEX inhibit_keys_alert ON inhibit_keys (alert_id);
