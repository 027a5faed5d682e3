-- Up Migration
-- Pages mirrored from Notion; a sync fetches what was edited after the newest last_edited_time it holds.
CREATE TABLE notion_pages (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id          bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  notion_page_id   text NOT NULL,
  parent_id        text,
  title            text NOT NULL DEFAULT '',
  url              text,
  properties       jsonb NOT NULL DEFAULT '{}',
  content          text,
  archived         boolean NOT NULL DEFAULT false,
  last_edited_time timestamptz NOT NULL,
  synced_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, notion_page_id)
);
CREATE INDEX notion_pages_user_edited_idx ON notion_pages (user_id, last_edited_time DESC);

-- Down Migration
DROP TABLE notion_pages;
