-- KIE key health, written by the workers and read by `admin keys` and by other workers.
CREATE TABLE kie_keys (
    id          TEXT PRIMARY KEY,
    account     TEXT NOT NULL,
    state       TEXT NOT NULL CONSTRAINT kie_keys_state_known CHECK (state IN ('healthy', 'cooling', 'disabled')),
    reason      TEXT,
    until_at    BIGINT,
    updated_at  BIGINT NOT NULL
);

-- The create limit of each KIE account (20 per 10 s) is shared by every worker process:
-- one row per account to serialise the slot takers, one row per recent create.
CREATE TABLE kie_accounts (
    name  TEXT PRIMARY KEY
);
CREATE TABLE kie_creates (
    id       BIGSERIAL PRIMARY KEY,
    account  TEXT NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX kie_creates_by_account ON kie_creates (account, at);
