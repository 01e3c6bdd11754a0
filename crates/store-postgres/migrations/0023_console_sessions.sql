-- Operator console sessions (issue 14), shared by every replica and kept across restarts. Only the SHA-256 of the
-- session token is stored (the cookie holds the token), so reading this table opens no session. A row past
-- `expires_at_ms` is never honoured and is deleted by the next login; logging out deletes the row.
CREATE TABLE console_sessions (
    token_hash    TEXT PRIMARY KEY,
    operator      TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at_ms);
