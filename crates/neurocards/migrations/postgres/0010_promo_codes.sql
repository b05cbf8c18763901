-- Promo codes: an admin creates a code worth some credits, for a number of uses (or any) and
-- until a date (or always); a user redeems a code at most once. Redeemed credits are a ledger
-- row of their own kind ('referral' is reserved for invite bonuses).
ALTER TABLE ledger DROP CONSTRAINT ledger_kind_known;
ALTER TABLE ledger ADD CONSTRAINT ledger_kind_known
    CHECK (kind IN ('grant', 'purchase', 'order', 'refund', 'payment_refund', 'promo', 'referral'));

CREATE TABLE promo_codes (
    code         TEXT PRIMARY KEY,
    credits      BIGINT NOT NULL CHECK (credits > 0),
    -- NULL: any number of users.
    max_uses     BIGINT CHECK (max_uses IS NULL OR max_uses > 0),
    used         BIGINT NOT NULL DEFAULT 0,
    expires_at   BIGINT,
    disabled_at  BIGINT,
    created_at   BIGINT NOT NULL,
    CONSTRAINT promo_codes_within_uses CHECK (max_uses IS NULL OR used <= max_uses)
);
CREATE TABLE promo_redemptions (
    code         TEXT NOT NULL REFERENCES promo_codes (code),
    user_id      BIGINT NOT NULL REFERENCES users (id),
    redeemed_at  BIGINT NOT NULL,
    PRIMARY KEY (code, user_id)
);
-- Wrong codes entered, to slow down guessing.
CREATE TABLE promo_misses (
    user_id  BIGINT NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX promo_misses_by_user ON promo_misses (user_id, at);
