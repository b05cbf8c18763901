-- Times are unix milliseconds (UTC) written by the application's clock: one schema shape for
-- both engines, and tests drive time without sleeping.

-- A Telegram user. `credits` is a cache of the sum of the user's ledger rows, kept in the
-- same transaction as every ledger insert (invariant 1).
CREATE TABLE users (
    id          BIGINT PRIMARY KEY,
    username    TEXT,
    language    TEXT NOT NULL,
    credits     BIGINT NOT NULL DEFAULT 0 CONSTRAINT users_credits_not_negative CHECK (credits >= 0),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- What the user asked for. The generation parameters (model, input fields) are frozen here
-- at order time, so a later template edit never changes a running order.
CREATE TABLE orders (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id             BIGINT NOT NULL REFERENCES users (id),
    chat_id             BIGINT NOT NULL,
    -- The bot passes the callback query id: a second press cannot place a second order.
    idempotency_key     TEXT CONSTRAINT orders_idempotency_key_unique UNIQUE,
    video_count         BIGINT NOT NULL CHECK (video_count > 0),
    unit_price          BIGINT NOT NULL CHECK (unit_price > 0),
    photo_file_id       TEXT NOT NULL,
    template_id         TEXT,
    prompt              TEXT NOT NULL,
    generation          TEXT NOT NULL,
    language            TEXT NOT NULL,
    -- The summary is claimed by one worker, then marked sent (invariant 6).
    summary_claimed_by  TEXT,
    summary_claimed_at  BIGINT,
    summary_sent_at     BIGINT,
    summary_message_id  BIGINT,
    created_at          BIGINT NOT NULL
);
CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_awaiting_summary ON orders (id) WHERE summary_sent_at IS NULL;

-- One video. `locked_by` + `attempt_token` are the lease: the token is new at every claim
-- and every later write must present it, so a worker presumed dead cannot touch the job.
CREATE TABLE jobs (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id           BIGINT NOT NULL REFERENCES orders (id),
    user_id            BIGINT NOT NULL REFERENCES users (id),
    seq                BIGINT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'queued' CONSTRAINT jobs_status_known
                       CHECK (status IN ('queued', 'submitting', 'generating', 'delivering', 'delivered', 'failed')),
    attempts           BIGINT NOT NULL DEFAULT 0,
    run_at             BIGINT NOT NULL,
    locked_by          TEXT,
    attempt_token      TEXT,
    claimed_at         BIGINT,
    submit_started_at  BIGINT,
    -- Stored the moment KIE accepts a task (invariant 5); kept across takeovers.
    kie_task_id        TEXT,
    kie_key_id         TEXT,
    error_class        TEXT,
    error_message      TEXT,
    tg_message_id      BIGINT,
    tg_file_id         TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    finished_at        BIGINT,
    CONSTRAINT jobs_seq_unique UNIQUE (order_id, seq),
    CONSTRAINT jobs_lease_whole CHECK ((locked_by IS NULL) = (attempt_token IS NULL))
);
CREATE INDEX jobs_claimable ON jobs (run_at, id)
    WHERE locked_by IS NULL AND status NOT IN ('delivered', 'failed');
CREATE INDEX jobs_held_by_worker ON jobs (locked_by) WHERE locked_by IS NOT NULL;
CREATE INDEX jobs_held_by_user ON jobs (user_id) WHERE locked_by IS NOT NULL;
CREATE INDEX jobs_by_order ON jobs (order_id);
CREATE INDEX jobs_by_task ON jobs (kie_task_id) WHERE kie_task_id IS NOT NULL;
CREATE INDEX jobs_by_token ON jobs (attempt_token) WHERE attempt_token IS NOT NULL;

-- Every change of a balance. The partial unique indexes make the money rules hold whatever
-- a retrying caller does: one debit per order, one refund per job, one credit per payment.
CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    delta       BIGINT NOT NULL CHECK (delta <> 0),
    kind        TEXT NOT NULL CONSTRAINT ledger_kind_known
                CHECK (kind IN ('grant', 'purchase', 'order', 'refund')),
    reason      TEXT,
    order_id    BIGINT REFERENCES orders (id),
    job_id      BIGINT REFERENCES jobs (id),
    payment_id  TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX ledger_by_user ON ledger (user_id, id);
CREATE UNIQUE INDEX ledger_one_debit_per_order ON ledger (order_id) WHERE kind = 'order';
CREATE UNIQUE INDEX ledger_one_refund_per_job ON ledger (job_id) WHERE kind = 'refund';
CREATE UNIQUE INDEX ledger_one_credit_per_payment ON ledger (payment_id) WHERE kind = 'purchase';

-- The bot's dialog state per chat, so a restart mid-dialog loses nothing.
CREATE TABLE dialogs (
    chat_id     BIGINT PRIMARY KEY,
    state       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Telegram Stars payments; the charge id is Telegram's unique key (invariant 7).
CREATE TABLE payments (
    charge_id   TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    package_id  TEXT NOT NULL,
    stars       BIGINT NOT NULL,
    credits     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Worker processes and their heartbeats: one write per process, not per job. Jobs held by
-- a worker whose heartbeat is too old are taken back.
CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    hostname      TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);
