-- The alert's card refresh waiting in a lane's outbox (see Dedup::refresh): while that item is pending and the
-- dispatcher has not read the alert for it yet, further duplicates enqueue no other refresh, so a burst of
-- duplicates costs one or two chat.update calls. Cleared by Store::alert_card when the dispatcher reads it.
ALTER TABLE alert_posts ADD COLUMN refresh_item_id INTEGER;
