import pino, { type Logger } from 'pino';

/**
 * One JSON line per event on stdout. Writes are synchronous so the last line — the run's
 * result — is out before the process exits.
 */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.errWithCause },
    },
    pino.destination({ dest: 1, sync: true }),
  );
}

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** The level to log at before the configuration is validated (an invalid one falls back to info). */
export function bootLogLevel(env: NodeJS.ProcessEnv): string {
  const level = env.LOG_LEVEL ?? '';
  return LEVELS.has(level) ? level : 'info';
}
