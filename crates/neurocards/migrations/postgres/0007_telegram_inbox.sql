-- Webhook mode: every update Telegram posts is written here before the bot answers 200, and
-- processed from here, so a crash after the answer loses nothing and a repeated delivery
-- (same update_id) is stored once. `chat_id` orders the updates of one chat; an update with
-- none (a pre-checkout query) waits behind nothing. A claim is a holder, a token and a time:
-- a claim not renewed for a while belongs to a process that died, and is taken over.
CREATE TABLE telegram_inbox (
    update_id    BIGINT PRIMARY KEY,
    chat_id      BIGINT,
    body         TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    claimed_by   TEXT,
    claim_token  TEXT,
    claimed_at   BIGINT,
    processed_at BIGINT
);
CREATE INDEX telegram_inbox_pending ON telegram_inbox (chat_id, update_id) WHERE processed_at IS NULL;
CREATE INDEX telegram_inbox_processed ON telegram_inbox (processed_at) WHERE processed_at IS NOT NULL;
