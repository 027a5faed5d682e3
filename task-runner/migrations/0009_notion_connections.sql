-- Up Migration
-- Whose Notion workspace sync.notion-pages mirrors, and how far it got. The integration token
-- is never stored here: token_variable names the environment variable (from a Secret) that
-- holds it. high_water_mark is the newest last_edited_time of a completed sync.
CREATE TABLE notion_connections (
  user_id         bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  token_variable  text NOT NULL DEFAULT 'NOTION_TOKEN' CHECK (token_variable ~ '^[A-Z_][A-Z0-9_]*$'),
  enabled         boolean NOT NULL DEFAULT true,
  high_water_mark timestamptz,
  last_synced_at  timestamptz,
  last_error      text
);

-- Down Migration
DROP TABLE notion_connections;
