-- Referrals: a user who arrived by another's invite link is bound to them once; when their
-- first payment lands, both get the referral bonus, once (referral_rewarded_at).
ALTER TABLE users ADD COLUMN referrer_id BIGINT;
ALTER TABLE users ADD COLUMN referral_rewarded_at BIGINT;
CREATE INDEX users_by_referrer ON users (referrer_id) WHERE referrer_id IS NOT NULL;
