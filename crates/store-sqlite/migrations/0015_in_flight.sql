-- When a post's call last started without its outcome being recorded: after a crash, a timeout or a lost lease the
-- next attempt looks for the post in Slack before sending it again (no post twice).
ALTER TABLE outbox ADD COLUMN sending_at_ms INTEGER;
