-- Promo codes: an admin creates a code worth some credits, for a number of uses (or any) and
-- until a date (or always); a user redeems a code at most once. Redeemed credits are a ledger
-- row of their own kind ('referral' is reserved for invite bonuses). SQLite cannot change a
-- CHECK constraint: the ledger is rebuilt (nothing refers to it).
CREATE TABLE ledger_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    delta       BIGINT NOT NULL CHECK (delta <> 0),
    kind        TEXT NOT NULL CONSTRAINT ledger_kind_known
                CHECK (kind IN ('grant', 'purchase', 'order', 'refund', 'payment_refund', 'promo', 'referral')),
    reason      TEXT,
    order_id    BIGINT REFERENCES orders (id),
    job_id      BIGINT REFERENCES jobs (id),
    payment_id  TEXT,
    created_at  BIGINT NOT NULL
);
INSERT INTO ledger_new (id, user_id, delta, kind, reason, order_id, job_id, payment_id, created_at)
    SELECT id, user_id, delta, kind, reason, order_id, job_id, payment_id, created_at FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_new RENAME TO ledger;
CREATE INDEX ledger_by_user ON ledger (user_id, id);
CREATE UNIQUE INDEX ledger_one_debit_per_order ON ledger (order_id) WHERE kind = 'order';
CREATE UNIQUE INDEX ledger_one_refund_per_job ON ledger (job_id) WHERE kind = 'refund';
CREATE UNIQUE INDEX ledger_one_credit_per_payment ON ledger (payment_id) WHERE kind = 'purchase';
CREATE UNIQUE INDEX ledger_one_refund_per_payment ON ledger (payment_id) WHERE kind = 'payment_refund';

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
