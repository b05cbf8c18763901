-- Admin alerts are limited per kind across every process: one row per kind with when it was
-- last sent and how many were held back since.
CREATE TABLE alert_gate (
    kind    TEXT PRIMARY KEY,
    sent_at BIGINT NOT NULL,
    held    BIGINT NOT NULL DEFAULT 0
);
-- The share of failed videos over the last minutes reads only the recent ones.
CREATE INDEX jobs_finished_recently ON jobs (finished_at) WHERE finished_at IS NOT NULL;
