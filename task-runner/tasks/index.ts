// The built-in tasks: one import per task. Adding a task adds its file and one line here.
import type { AnyTask } from '../task.ts';
import cleanupOldLogs from './ai/cleanup-old-logs.ts';
import processDueTasks from './ai/process-due-tasks.ts';
import testSchedulerConnection from './ai/test-scheduler-connection.ts';
import processEmailQueue from './email/process-queue.ts';
import sendDailySummary from './email/send-daily-summary.ts';
import sendNotifications from './email/send-notifications.ts';
import backupUserData from './file/backup-user-data.ts';
import cleanupTempFiles from './file/cleanup-temp-files.ts';
import restoreUserData from './file/restore-user-data.ts';
import cleanupOldSessions from './maintenance/cleanup-old-sessions.ts';
import optimizeDatabase from './maintenance/optimize-database.ts';
import syncCalendarEvents from './sync/calendar-events.ts';
import syncNotionPages from './sync/notion-pages.ts';

export const builtinTasks: readonly AnyTask[] = [
  cleanupOldLogs,
  processDueTasks,
  testSchedulerConnection,
  processEmailQueue,
  sendDailySummary,
  sendNotifications,
  backupUserData,
  cleanupTempFiles,
  restoreUserData,
  cleanupOldSessions,
  optimizeDatabase,
  syncCalendarEvents,
  syncNotionPages,
];
