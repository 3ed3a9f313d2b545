/**
 * The platform's own log (start-up lines, sandbox diagnostics, warnings — not functions' logs):
 * human lines on a terminal, as before, and JSON lines with a level (pino) when stdout is not a
 * terminal, so a log shipper reading a service's output gets structured records.
 */
import { pino } from 'pino';

/** How serious a platform line is. */
export type PlatformLevel = 'debug' | 'info' | 'warn' | 'error';

/** Writes platform lines; `fields` become JSON properties (and are left out of human lines). */
export interface PlatformLogger {
  log(level: PlatformLevel, message: string, fields?: Record<string, unknown>): void;
  /** Whether lines are JSON (start-up banners are then records, not art). */
  readonly json: boolean;
}

/** Options of createPlatformLogger, each defaulted from the process. */
export interface LoggerOptions {
  /** JSON lines instead of human ones; default: stdout is not a TTY, or KYLIX_LOG_FORMAT=json|text. */
  json?: boolean;
  /** The lowest level written (KYLIX_LOG_LEVEL; default info). */
  level?: PlatformLevel;
  /** Where JSON lines go (default stdout); for tests. */
  destination?: NodeJS.WritableStream;
}

/** Whether JSON is the default here: KYLIX_LOG_FORMAT wins, else whether stdout is a terminal. */
export function jsonByDefault(
  env: NodeJS.ProcessEnv = process.env,
  tty = process.stdout.isTTY === true,
): boolean {
  if (env.KYLIX_LOG_FORMAT === 'json') return true;
  if (env.KYLIX_LOG_FORMAT === 'text') return false;
  return !tty;
}

const RANK: Record<PlatformLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** See the file comment. */
export function createPlatformLogger(options: LoggerOptions = {}): PlatformLogger {
  const json = options.json ?? jsonByDefault();
  const env = process.env.KYLIX_LOG_LEVEL as PlatformLevel | undefined;
  const level: PlatformLevel = options.level ?? (env && env in RANK ? env : 'info');
  if (!json) {
    return {
      json,
      log(l, message) {
        if (RANK[l] < RANK[level]) return;
        if (l === 'warn' || l === 'error') console.error(message);
        else console.log(message);
      },
    };
  }
  const logger = pino(
    {
      level,
      base: { service: 'kylix' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "level":"warn" rather than pino's numbers: what log shippers and people grep for.
      formatters: { level: (label) => ({ level: label }) },
      messageKey: 'message',
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
  return {
    json,
    log(l, message, fields) {
      if (fields) logger[l](fields, message);
      else logger[l](message);
    },
  };
}
