-- "Where my order stands": the "order accepted" message is edited as the order moves. The
-- message, the text it shows now, when it was last looked at (at most once per
-- PROGRESS_EVERY), and 1 once it shows the order done.
ALTER TABLE orders ADD COLUMN accepted_message_id BIGINT;
ALTER TABLE orders ADD COLUMN progress_text TEXT;
ALTER TABLE orders ADD COLUMN progress_at BIGINT;
ALTER TABLE orders ADD COLUMN progress_done BIGINT NOT NULL DEFAULT 0;
CREATE INDEX orders_progress_pending ON orders (progress_at)
    WHERE accepted_message_id IS NOT NULL AND progress_done = 0;
