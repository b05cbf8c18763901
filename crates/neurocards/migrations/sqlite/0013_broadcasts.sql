-- Broadcasts: an admin's message to a segment of the users. The recipients are fixed when it
-- starts; each is claimed before the send (a crash between the claim and the send skips that
-- user rather than messaging anyone twice). One worker sends a broadcast at a time (holder).
CREATE TABLE broadcasts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    text         TEXT NOT NULL,
    button_text  TEXT,
    button_url   TEXT,
    segment      TEXT NOT NULL,
    state        TEXT NOT NULL CONSTRAINT broadcasts_state_known
                 CHECK (state IN ('draft', 'sending', 'cancelled', 'done')),
    holder       TEXT,
    held_at      BIGINT,
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT
);
CREATE TABLE broadcast_recipients (
    broadcast_id  BIGINT NOT NULL REFERENCES broadcasts (id),
    user_id       BIGINT NOT NULL,
    claimed_at    BIGINT,
    -- 'sent', 'blocked' (the user blocked the bot: marked and skipped next time) or 'failed'.
    outcome       TEXT,
    PRIMARY KEY (broadcast_id, user_id)
);
CREATE INDEX broadcast_recipients_pending ON broadcast_recipients (broadcast_id, user_id)
    WHERE claimed_at IS NULL;
