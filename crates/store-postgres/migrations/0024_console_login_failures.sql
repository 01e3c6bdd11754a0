-- The console's login throttle (issue 14), shared by every replica and kept across restarts, so neither a second
-- replica nor a restart hands a guesser a fresh allowance. A row is a login attempt noted before its key was checked
-- (so concurrent guesses count each other); it stays as a failure if the key was wrong, is deleted when the attempt
-- was refused by the throttle, and a successful login deletes its address's rows. Rows older than the window are
-- deleted by the next attempt.
CREATE TABLE console_login_failures (
    id     BIGSERIAL PRIMARY KEY,
    client TEXT NOT NULL,
    at_ms  BIGINT NOT NULL
);
CREATE INDEX console_login_failures_client ON console_login_failures (client, at_ms);
CREATE INDEX console_login_failures_at ON console_login_failures (at_ms);
