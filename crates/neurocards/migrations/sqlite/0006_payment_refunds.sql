-- Refunds of Stars payments: the credits a refund took back are a ledger row of their own
-- kind, one per payment, and the payment remembers when it was refunded and how many
-- credits came back (fewer than it bought when the buyer had spent some and the refund was
-- forced). SQLite cannot change a CHECK constraint: the ledger is rebuilt (nothing refers
-- to it).
CREATE TABLE ledger_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    delta       BIGINT NOT NULL CHECK (delta <> 0),
    kind        TEXT NOT NULL CONSTRAINT ledger_kind_known
                CHECK (kind IN ('grant', 'purchase', 'order', 'refund', 'payment_refund')),
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

ALTER TABLE payments ADD COLUMN refunded_at BIGINT;
ALTER TABLE payments ADD COLUMN refunded_credits BIGINT;
CREATE INDEX payments_by_time ON payments (created_at);
CREATE INDEX payments_by_user ON payments (user_id, created_at);
