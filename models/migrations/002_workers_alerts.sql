-- Alerts (area WORKERS): a minimum day rate beside the minimum budget, and the indexes the
-- delivery claim and the daily digest scan use.
ALTER TABLE alert_preferences ADD COLUMN min_day_rate double precision;

-- Digest alerts wait as pending; the digest cron scans them per seller.
CREATE INDEX alerts_digest_idx ON alerts (seller_id) WHERE channel = 'digest' AND status = 'pending';
-- Admins list failed deliveries, newest first.
CREATE INDEX alerts_failed_idx ON alerts (created_at DESC) WHERE status = 'failed';
