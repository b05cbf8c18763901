-- A send whose answer never came may have reached the user: such a delivery is recorded as
-- unconfirmed (never refunded, never sent again on the worker's own), and the user can ask
-- for the video again from the order's summary, which needs the result's link.
ALTER TABLE jobs ADD COLUMN result_url TEXT;
ALTER TABLE jobs ADD COLUMN delivery_unconfirmed BIGINT NOT NULL DEFAULT 0;
