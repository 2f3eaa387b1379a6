/**
 * The one logger: pino, one child per area (`runtime`, `cluster`, `gateway`, …), JSON lines on
 * stderr so a command's own output on stdout stays clean. Secrets never reach a line: the paths
 * where they live are censored, and callers log keys and codes, not configs.
 *
 * Host-side only: session threads never import it (their failures travel to the host as typed
 * errors, and the host logs them).
 *
 * @example
 * import { setLogger, createLogger } from 'agentcell';
 * setLogger(createLogger({ level: 'debug' }));   // or hand in your own pino instance
 */
import { pino } from 'pino';

export type Logger = pino.Logger;
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export const LOG_LEVELS: readonly LogLevel[] = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
];

/** The areas that log: each gets a child logger with `area` set. */
export type LogArea =
  | 'runtime'
  | 'placement'
  | 'store'
  | 'cluster'
  | 'gateway'
  | 'chat'
  | 'cli'
  | 'mcp';

/** Where secrets can sit in what the runtime logs; censored wherever they appear. */
const SECRET_PATHS = [
  'apiKey',
  'auth',
  'token',
  'authorization',
  'password',
  '*.apiKey',
  '*.auth',
  '*.token',
  '*.authorization',
  '*.password',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
];

export interface CreateLoggerOptions {
  /** @default the `AGENTCELL_LOG_LEVEL` environment variable, else `'warn'` */
  readonly level?: LogLevel | undefined;
  /** Where lines go. @default stderr */
  readonly destination?: pino.DestinationStream | undefined;
}

/**
 * A pino logger set up the way agentcell logs: level, secret paths censored, stderr.
 *
 * @example
 * const logger = createLogger({ level: 'info' });
 */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const level = options.level ?? envLevel() ?? 'warn';
  return pino(
    {
      level,
      base: { name: 'agentcell' },
      redact: { paths: SECRET_PATHS, censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ dest: 2, sync: true }),
  );
}

function envLevel(): LogLevel | undefined {
  const value = process.env['AGENTCELL_LOG_LEVEL'];
  return LOG_LEVELS.find((level) => level === value);
}

let root: Logger | undefined;
let children = new Map<LogArea, Logger>();

/**
 * Replaces the logger every area writes to (an embedder's own pino instance, or one made by
 * {@link createLogger}). Children made afterwards inherit its level and destination.
 */
export function setLogger(logger: Logger): void {
  root = logger;
  children = new Map();
}

/** The child logger of one area. */
export function log(area: LogArea): Logger {
  let child = children.get(area);
  if (!child) {
    root ??= createLogger();
    // pino's own `err` serializer would add `type` and `stack` to the fields errorFields chose.
    child = root.child({ area }, { serializers: { err: serializeErr } });
    children.set(area, child);
  }
  return child;
}

/** What a thrown value says, for a log line: code, name and message, never the whole object. */
export function errorFields(error: unknown): Record<string, unknown> {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      err: { name: error.name, message: error.message, ...(code !== undefined && { code }) },
    };
  }
  return { err: { message: String(error) } };
}

/** An `err` field as a line shows it: a thrown Error is cut down like {@link errorFields}. */
function serializeErr(value: unknown): unknown {
  return value instanceof Error ? errorFields(value)['err'] : value;
}
