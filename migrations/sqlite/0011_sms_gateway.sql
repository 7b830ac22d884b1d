-- The SMS gateway drains the outbox: each message by its template and parameters (providers send
-- no free text; body is the rendered text, for the outbox and the operators), with its status:
-- queued, sending (claimed by one sender until lease_until), sent, delivered, failed (failure).
ALTER TABLE sms_outbox ADD COLUMN template TEXT NOT NULL DEFAULT 'login_code';
ALTER TABLE sms_outbox ADD COLUMN params TEXT NOT NULL DEFAULT '[]';  -- JSON: [[name, value]]
ALTER TABLE sms_outbox ADD COLUMN status TEXT NOT NULL DEFAULT 'queued';
ALTER TABLE sms_outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sms_outbox ADD COLUMN next_attempt_at TEXT;
-- Not worth sending after this (a login code that has expired).
ALTER TABLE sms_outbox ADD COLUMN send_before TEXT;
ALTER TABLE sms_outbox ADD COLUMN lease_until TEXT;
ALTER TABLE sms_outbox ADD COLUMN failure TEXT;
-- The gateway's id for the message (Aliyun BizId, Tencent SerialNo), for delivery reports.
ALTER TABLE sms_outbox ADD COLUMN gateway_id TEXT;
ALTER TABLE sms_outbox ADD COLUMN delivered_at TEXT;

-- What was sent is marked so; what was queued before has neither parameters nor a use (codes
-- live minutes).
UPDATE sms_outbox SET status = 'sent' WHERE sent_at IS NOT NULL;
UPDATE sms_outbox SET status = 'failed', failure = 'expired' WHERE sent_at IS NULL;

CREATE INDEX sms_outbox_by_status ON sms_outbox (status, id);
CREATE INDEX sms_outbox_by_gateway_id ON sms_outbox (gateway_id);
