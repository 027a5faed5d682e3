-- Up Migration
-- The application's contract for local changes to Notion pages (migration 0016), completed. It
-- records a change with:
--   UPDATE notion_pages SET pending_properties = coalesce(pending_properties, '{}') || $properties,
--     pending_archived = coalesce($archived, pending_archived), pending_base = coalesce(pending_base, $seen),
--     pending_since = now(), push_error = NULL, push_attempts = 0, push_last_failure = NULL
--   WHERE user_id = $user AND notion_page_id = $page
-- $seen is the row's last_edited_time as the user's view read it, with the pending change (if
-- any) shown over the row's values. A view may outlive a push: it read version V0 with change C1
-- pending, sync.notion-pages pushed C1 and stored Notion's answer V1, and the user saves another
-- edit from that view with $seen = V0. The task tells that from an edit in Notion by the push's
-- record below: a change based on pushed_from, on a row still holding the answer
-- (last_edited_time = pushed_as), counts as made on the answer, except for what Notion changed
-- between the two, which that view did not show (pushed_notion_changed). A change based on any
-- other version older than the row's counts the whole page as changed in Notion (by the times).
-- pushed_from: the row's last_edited_time when its last push was sent.
-- pushed_as: the last_edited_time of Notion's answer to that push, stored as the row's copy.
-- pushed_notion_changed: the properties (each by name, id as Notion gives it and decoded) and
--   'in_trash' that Notion changed between the two apart from what the push set.
-- push_attempts, push_last_failure: the pushes of the pending change that failed in a way a retry
--   may cure (a 5xx, a timeout), and the last such failure. The task moves on to the user's other
--   changes and the pull, and fails the connection at the end of the run (so the run is retried);
--   after the task's maxPushAttempts it sets push_error, and the change waits for the application
--   like a refused one. A push that gets through, or a change settled otherwise, resets them; the
--   application's write above resets them too (the change is a new one).
-- Unlike 0016 says, restricted_resource from pages.update is no refusal of the change: the
-- integration lacks the capability to update content, so the connection fails and every change
-- stays pending without a push_error. A refused update still stores the page as Notion had it.
-- The task writes these columns; the application only reads them (and resets the attempts).
ALTER TABLE notion_pages
  ADD COLUMN push_attempts integer NOT NULL DEFAULT 0,
  ADD COLUMN push_last_failure text,
  ADD COLUMN pushed_from timestamptz,
  ADD COLUMN pushed_as timestamptz,
  ADD COLUMN pushed_notion_changed text[],
  ADD CONSTRAINT notion_pages_pushed_whole CHECK ((pushed_from IS NULL) = (pushed_as IS NULL) AND (pushed_from IS NULL) = (pushed_notion_changed IS NULL));

-- Down Migration
ALTER TABLE notion_pages DROP CONSTRAINT notion_pages_pushed_whole,
  DROP COLUMN pushed_notion_changed, DROP COLUMN pushed_as, DROP COLUMN pushed_from,
  DROP COLUMN push_last_failure, DROP COLUMN push_attempts;
