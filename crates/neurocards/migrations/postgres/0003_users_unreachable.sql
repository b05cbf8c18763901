-- Set when Telegram answers that the user blocked the bot; cleared when they write again.
ALTER TABLE users ADD COLUMN unreachable_at BIGINT;
