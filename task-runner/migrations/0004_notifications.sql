-- Up Migration
CREATE TABLE notifications (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  ai_task_id    bigint REFERENCES ai_tasks (id) ON DELETE SET NULL,
  channel       text NOT NULL CHECK (channel IN ('email', 'sms', 'push', 'in_app')),
  title         text NOT NULL,
  body          text NOT NULL DEFAULT '',
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
  scheduled_for timestamptz NOT NULL DEFAULT now(),
  sent_at       timestamptz,
  attempts      integer NOT NULL DEFAULT 0,
  last_error    text,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_pending_idx ON notifications (scheduled_for) WHERE status = 'pending';
CREATE INDEX notifications_user_id_idx ON notifications (user_id);

-- Down Migration
DROP TABLE notifications;
