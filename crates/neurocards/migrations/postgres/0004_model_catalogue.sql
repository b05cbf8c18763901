-- The model catalogue: each order records the exact model and option it was charged for
-- (the frozen request settings stay in `generation`), so a refund returns that price and
-- statistics can group by model.
ALTER TABLE orders ADD COLUMN model TEXT;
ALTER TABLE orders ADD COLUMN model_option TEXT;

-- Models KIE answered as retired ("temporarily paused", "page does not exist"): the bot
-- stops offering them until an operator runs `neurocards admin models enable <id>`. A model
-- without a row is available.
CREATE TABLE model_states (
    id          TEXT PRIMARY KEY,
    state       TEXT NOT NULL CONSTRAINT model_states_state_known CHECK (state IN ('available', 'unavailable')),
    reason      TEXT,
    changed_at  BIGINT NOT NULL
);

-- A create slot stays "in flight" from the moment it is taken until KIE has answered the
-- request: until then its arrival time at KIE is unknown, so it counts as arriving now. Once
-- answered, `at` becomes the answer's time, an upper bound of the arrival. A request delayed
-- between the slot and the send (a busy machine) can then no longer slip a 21st create into
-- KIE's window.
ALTER TABLE kie_creates ADD COLUMN in_flight BIGINT NOT NULL DEFAULT 0;
