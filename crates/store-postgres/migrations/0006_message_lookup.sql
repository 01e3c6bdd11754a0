-- Which event a card is, from the message Slack answered with (Store::event_of_message): a reaction names only
-- the channel and ts of the message it is on.
CREATE INDEX outbox_sent_message ON outbox (sent_channel, sent_ts) WHERE state = 'sent';
