-- The campaign-wide hourly SMS budget counts the outbox by time.
CREATE INDEX sms_outbox_by_time ON sms_outbox (created_at);
