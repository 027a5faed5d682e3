// The built-in tasks: one import per task. Adding a task adds its file and one line here.
import type { AnyTask } from '../task.ts';
import processDueTasks from './ai/process-due-tasks.ts';
import testSchedulerConnection from './ai/test-scheduler-connection.ts';
import processEmailQueue from './email/process-queue.ts';
import cleanupTempFiles from './file/cleanup-temp-files.ts';
import cleanupOldSessions from './maintenance/cleanup-old-sessions.ts';
import optimizeDatabase from './maintenance/optimize-database.ts';
import syncCalendarEvents from './sync/calendar-events.ts';

export const builtinTasks: readonly AnyTask[] = [
  processDueTasks,
  testSchedulerConnection,
  processEmailQueue,
  cleanupTempFiles,
  cleanupOldSessions,
  optimizeDatabase,
  syncCalendarEvents,
];
