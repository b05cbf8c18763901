-- Refunds of Stars payments: the credits a refund took back are a ledger row of their own
-- kind, one per payment, and the payment remembers when it was refunded and how many
-- credits came back (fewer than it bought when the buyer had spent some and the refund was
-- forced).
ALTER TABLE ledger DROP CONSTRAINT ledger_kind_known;
ALTER TABLE ledger ADD CONSTRAINT ledger_kind_known
    CHECK (kind IN ('grant', 'purchase', 'order', 'refund', 'payment_refund'));
CREATE UNIQUE INDEX ledger_one_refund_per_payment ON ledger (payment_id) WHERE kind = 'payment_refund';

ALTER TABLE payments ADD COLUMN refunded_at BIGINT;
ALTER TABLE payments ADD COLUMN refunded_credits BIGINT;
-- Payments by day for `admin payments`; and a buyer's own for /paysupport.
CREATE INDEX payments_by_time ON payments (created_at);
CREATE INDEX payments_by_user ON payments (user_id, created_at);
