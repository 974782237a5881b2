-- Server-side sessions of the web pages: the cookie holds a random session id (only its hash is
-- stored here), never the API token. A session ends when it expires, when its owner signs out,
-- or when the token it was opened with is revoked or expires.
CREATE TABLE web_sessions (
    id             bigserial PRIMARY KEY,
    session_hash   bytea NOT NULL UNIQUE,
    account_id     bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_id       bigint NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz
);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);
