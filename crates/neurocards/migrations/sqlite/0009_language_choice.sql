-- 1 once the user picked their language with /language: Telegram's language_code no longer
-- replaces it.
ALTER TABLE users ADD COLUMN language_chosen BIGINT NOT NULL DEFAULT 0;
