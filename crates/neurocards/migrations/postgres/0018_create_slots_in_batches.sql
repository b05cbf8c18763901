-- Create slots of an account are taken in batches: a worker process asks once for every
-- job of its own that waits for a slot of the account, so the account's row is locked once
-- per batch instead of once per create (each lock handed from one waiting backend to the
-- next cost milliseconds on a busy server, and bounded every account to a few hundred
-- creates a second). As in 0017, the count runs once the row is locked, and the commit
-- does not wait for the disk. 0017's one-slot function stays for workers of the previous
-- release during a rolling upgrade.
-- One row per slot taken; a single row with no slot when the window is full.
CREATE FUNCTION take_kie_create_slots(
    p_account TEXT, p_since BIGINT, p_abandoned BIGINT, p_now BIGINT, p_limit BIGINT,
    p_wanted BIGINT
) RETURNS TABLE (slot_id BIGINT, oldest_answered BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_in_window BIGINT;
    v_oldest_answered BIGINT;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM 1 FROM kie_accounts WHERE name = p_account FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO kie_accounts (name) VALUES (p_account) ON CONFLICT (name) DO NOTHING;
        PERFORM 1 FROM kie_accounts WHERE name = p_account FOR UPDATE;
    END IF;
    SELECT COUNT(*), MIN(CASE WHEN c.in_flight = 0 THEN c.at END)
      INTO v_in_window, v_oldest_answered
      FROM kie_creates c
     WHERE c.account = p_account AND c.at > p_abandoned AND (c.in_flight <> 0 OR c.at > p_since);
    IF v_in_window < p_limit AND p_wanted > 0 THEN
        RETURN QUERY
            WITH inserted AS (
                INSERT INTO kie_creates (account, at, in_flight)
                SELECT p_account, p_now, 1
                  FROM generate_series(1, LEAST(p_wanted, p_limit - v_in_window))
                RETURNING id
            )
            SELECT inserted.id, v_oldest_answered FROM inserted;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    slot_id := NULL;
    oldest_answered := v_oldest_answered;
    RETURN NEXT;
END
$$;
