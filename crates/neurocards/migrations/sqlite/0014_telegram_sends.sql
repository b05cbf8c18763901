-- The bot token's flood limits are shared by every process that sends with it (the bot and
-- each worker): one row per send of the last seconds. SQLite's write lock serialises the
-- senders; the budget row is there for the same schema on both engines.
CREATE TABLE telegram_budget (
    id  INTEGER PRIMARY KEY
);
INSERT INTO telegram_budget (id) VALUES (1);
CREATE TABLE telegram_sends (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    at    BIGINT NOT NULL,
    chat  BIGINT NOT NULL,
    lane  TEXT NOT NULL CONSTRAINT telegram_sends_lane_known CHECK (lane IN ('dialog', 'bulk'))
);
CREATE INDEX telegram_sends_by_time ON telegram_sends (at);
