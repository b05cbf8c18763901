-- A claim walks the due jobs oldest first and takes a few users' worth: these let it read
-- only the jobs it takes (and those of the users it looks at), however long the queue is.
CREATE INDEX jobs_due_by_id ON jobs (id)
    WHERE locked_by IS NULL AND status NOT IN ('delivered', 'failed');
CREATE INDEX jobs_due_by_user ON jobs (user_id, id)
    WHERE locked_by IS NULL AND status NOT IN ('delivered', 'failed');
