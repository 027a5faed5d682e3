// The built-in tasks: one import per task. Adding a task adds its file and one line here.
import type { AnyTask } from '../task.ts';
import processDueTasks from './ai/process-due-tasks.ts';
import testSchedulerConnection from './ai/test-scheduler-connection.ts';
import cleanupOldSessions from './maintenance/cleanup-old-sessions.ts';
import optimizeDatabase from './maintenance/optimize-database.ts';

export const builtinTasks: readonly AnyTask[] = [
  processDueTasks,
  testSchedulerConnection,
  cleanupOldSessions,
  optimizeDatabase,
];
