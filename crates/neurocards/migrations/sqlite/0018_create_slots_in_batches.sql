-- PostgreSQL only: its create slots are taken in batches by a function (0018 there).
-- SQLite takes them under its one write lock, in the statements of `take_create_slots`.
SELECT 1;
