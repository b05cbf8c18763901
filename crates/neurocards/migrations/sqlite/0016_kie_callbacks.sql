-- KIE's callbacks reach the process that serves PUBLIC_URL (the bot); the job that follows
-- the task may run in a worker process elsewhere. A callback no job of the receiving process
-- follows is noted here, and every worker looks for its own tasks among the recent ones.
CREATE TABLE kie_callbacks (
    task_id  TEXT PRIMARY KEY,
    at       BIGINT NOT NULL
);
CREATE INDEX kie_callbacks_by_time ON kie_callbacks (at);
