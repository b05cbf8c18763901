-- A createTask slot of an account is taken in one call (see `take_create_slot`): the
-- account's row stays locked only for the function's own statements and the commit, never
-- across round trips to a busy worker process, which bounded every account to one create
-- per round trip. Each statement of a volatile PL/pgSQL function reads a new snapshot, so
-- the count, run once the row is locked, sees every slot the lock's previous holder
-- committed. The commit does not wait for the disk (pacing records only: a server crash
-- can lose the last moment of them, which at worst lets a few creates out early that KIE
-- answers with 429, which every create obeys).
CREATE FUNCTION take_kie_create_slot(
    p_account TEXT, p_since BIGINT, p_abandoned BIGINT, p_now BIGINT, p_limit BIGINT
) RETURNS TABLE (slot_id BIGINT, in_window BIGINT, oldest_answered BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM 1 FROM kie_accounts WHERE name = p_account FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO kie_accounts (name) VALUES (p_account) ON CONFLICT (name) DO NOTHING;
        PERFORM 1 FROM kie_accounts WHERE name = p_account FOR UPDATE;
    END IF;
    SELECT COUNT(*), MIN(CASE WHEN c.in_flight = 0 THEN c.at END)
      INTO in_window, oldest_answered
      FROM kie_creates c
     WHERE c.account = p_account AND c.at > p_abandoned AND (c.in_flight <> 0 OR c.at > p_since);
    slot_id := NULL;
    IF in_window < p_limit THEN
        INSERT INTO kie_creates (account, at, in_flight) VALUES (p_account, p_now, 1)
        RETURNING id INTO slot_id;
    END IF;
    RETURN NEXT;
END
$$;
