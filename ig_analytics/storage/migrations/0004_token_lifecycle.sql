-- Token lifecycle and login kinds (issue 14): how each account is connected, what its token may do and when it
-- dies. Filled by `accounts add` / `accounts discover` and the daily token check (debug_token when IG_APP_ID and
-- IG_APP_SECRET are set), and by the Instagram-Login refresh. docs/data-dictionary.md explains every column.

ALTER TABLE instagram.accounts
    ADD COLUMN login_kind text NOT NULL DEFAULT 'facebook' CHECK (login_kind IN ('facebook', 'instagram')),
    ADD COLUMN token_scopes text[],                      -- granted permissions (debug_token); NULL = not known
    ADD COLUMN token_missing_scopes text[],              -- required permissions the token lacks; NULL = not known
    ADD COLUMN token_data_access_expires_at timestamptz, -- after it the user must log in again, even with a valid token
    ADD COLUMN token_issued_at timestamptz,              -- the current token's issue time (debug_token, else when stored)
    ADD COLUMN token_refreshed_at timestamptz,           -- last successful Instagram-Login refresh
    ADD COLUMN token_checked_at timestamptz,             -- last debug_token check
    ADD COLUMN token_refresh_error text,                 -- why the last refresh failed (NULL after a success)
    ADD COLUMN facebook_page_id text,                    -- the Page an account was discovered through
    ADD COLUMN facebook_page_name text;
