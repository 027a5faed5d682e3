-- Up Migration
-- Local changes to Notion pages, which sync.notion-pages pushes to Notion before it pulls (the
-- seed's "maintains bidirectional sync"). title, properties, archived and last_edited_time stay
-- Notion's copy of the page: the sync overwrites them, so the application never writes them; it
-- shows the pending values over them until they are pushed. It records a change (merged into one
-- still pending: a property set twice keeps its later value) with:
--   UPDATE notion_pages SET pending_properties = coalesce(pending_properties, '{}') || $properties,
--     pending_archived = coalesce($archived, pending_archived), pending_base = coalesce(pending_base, $seen),
--     pending_since = now(), push_error = NULL, push_attempts = 0, push_last_failure = NULL
--   WHERE user_id = $user AND notion_page_id = $page
-- pending_properties: property values as Notion's pages.update takes them, keyed by property name
--   (or id), e.g. {"Name": {"title": [{"text": {"content": "New title"}}]}}; only the named
--   properties change, and a title (rich text) value replaces the whole text. '{}': none.
-- pending_archived: true moves the page to Notion's trash, false takes it out; NULL leaves it.
-- pending_base: the last_edited_time of the version the user changed ($seen: the row's
--   last_edited_time as the user's view read it, with the pending change, if any, shown over the
--   row's values). A change to what Notion changed after that version (a property the change sets
--   to another value than Notion holds, the trash state) is in conflict, settled by the task's
--   conflictPolicy: told by the values while the row still holds that version, else by the times
--   (to the minute). A view may outlive a push: it read V0 with change C1 pending, the task pushed
--   C1 and stored Notion's answer V1, and the user saves another edit from that view with
--   $seen = V0. The push's record (pushed_from = V0, pushed_as = V1) tells that from an edit in
--   Notion: such a change counts as made on V1, except for what Notion changed between the two,
--   which that view did not show (pushed_notion_changed). A change based on any other version older
--   than the row's counts the whole page as changed in Notion.
-- pending_since: when the change was last written. The oldest changes are pushed first, and one
--   written again during its push stays pending (only the change the task sent is cleared).
-- A push clears the pending columns and stores the page Notion returns, so the next sync does not
-- take the task's own write for an edit in Notion. A refused change stays, with push_error saying
-- why (validation_error, object_not_found, a page the integration may not read: nothing a retry
-- changes; a refused update still stores the page as Notion had it), and is not sent again until
-- the application writes it anew, which clears push_error (remove a refused property first, e.g.
-- pending_properties - 'Nme': the merge keeps it), or drops it (the pending columns set NULL).
-- restricted_resource from pages.update is no refusal of the change: the integration lacks the
-- capability to update content, so the connection fails and every change stays pending.
-- push_attempts, push_last_failure: the pushes of the pending change that failed in a way a retry
--   may cure (a 5xx, a timeout), and the last such failure. The task moves on to the user's other
--   changes and the pull, and fails the connection at the end of the run (so the run is retried);
--   after the task's maxPushAttempts it sets push_error, and the change waits for the application
--   like a refused one. A push that gets through, or a change settled otherwise, resets them; the
--   application's write above resets them too (the change is a new one).
-- pushed_from, pushed_as: the row's last_edited_time when its last push was sent, and that of
--   Notion's answer, stored as the row's copy. pushed_notion_changed: the properties (each by name,
--   id as Notion gives it and decoded) and 'in_trash' that Notion changed between the two apart
--   from what the push set. The task writes these; the application only reads them.
-- conflict: the last conflict settled, what it discarded and why: {"resolved_at", "policy",
--   "base", "notion_last_edited_time", "notion_changed" (the properties Notion changed since the
--   base, "in_trash" for the trash state; null when the row no longer held the base version and
--   the whole page counted as changed), "discarded": {"side": "local" (notion-wins: the change, as
--   pending_properties/pending_archived/pending_since held it) or "notion" (local-wins: Notion's
--   values the change replaced), "properties", "archived"}}. It stays until the application clears it.
ALTER TABLE notion_pages
  ADD COLUMN pending_properties jsonb CHECK (jsonb_typeof(pending_properties) = 'object'),
  ADD COLUMN pending_archived boolean,
  ADD COLUMN pending_base timestamptz,
  ADD COLUMN pending_since timestamptz,
  ADD COLUMN push_error text,
  ADD COLUMN conflict jsonb,
  ADD COLUMN push_attempts integer NOT NULL DEFAULT 0,
  ADD COLUMN push_last_failure text,
  ADD COLUMN pushed_from timestamptz,
  ADD COLUMN pushed_as timestamptz,
  ADD COLUMN pushed_notion_changed text[],
  ADD CONSTRAINT notion_pages_pushed_whole CHECK ((pushed_from IS NULL) = (pushed_as IS NULL) AND (pushed_from IS NULL) = (pushed_notion_changed IS NULL)),
  -- A change is whole or absent: the push needs its base and its place in the queue.
  ADD CONSTRAINT notion_pages_pending_whole CHECK (
    (pending_properties IS NULL AND pending_archived IS NULL AND pending_base IS NULL AND pending_since IS NULL)
    OR ((pending_properties IS NOT NULL OR pending_archived IS NOT NULL) AND pending_base IS NOT NULL AND pending_since IS NOT NULL));
-- Each run takes a user's oldest changes still to push without scanning their pages.
CREATE INDEX notion_pages_pending_idx ON notion_pages (user_id, pending_since) WHERE pending_since IS NOT NULL AND push_error IS NULL;

-- Down Migration
DROP INDEX notion_pages_pending_idx;
ALTER TABLE notion_pages DROP CONSTRAINT notion_pages_pending_whole, DROP CONSTRAINT notion_pages_pushed_whole,
  DROP COLUMN pushed_notion_changed, DROP COLUMN pushed_as, DROP COLUMN pushed_from,
  DROP COLUMN push_last_failure, DROP COLUMN push_attempts,
  DROP COLUMN conflict, DROP COLUMN push_error, DROP COLUMN pending_since, DROP COLUMN pending_base,
  DROP COLUMN pending_archived, DROP COLUMN pending_properties;
