-- PostgreSQL only: its create slots are taken by a function (0017 there). SQLite takes
-- them under its one write lock, in the statements of `take_create_slot`.
SELECT 1;
