/**
 * The options of the stores, in the house style: one strict schema per options object (an
 * unknown key, such as a misspelled `fsynk`, is refused) with its defaults, parsed once at
 * construction.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { parseWith } from '../options.js';
import type { CorruptionObserver } from './corruption.js';

const isFunction = (value: unknown) => typeof value === 'function';

export interface FileStoreOptions {
  /**
   * The directory of the journals, created if missing. One FileStore per directory at a time:
   * the store assumes it is the only writer.
   */
  readonly dir: string;
  /** Records a session's journal may hold before it is compacted into its snapshot. @default 1000 */
  readonly compactAfter?: number;
  /**
   * Whether every append (and every file and directory change) is flushed to the disk before it
   * resolves. Turn off only for scratch data: a power loss can then lose acknowledged turns.
   * @default true
   */
  readonly fsync?: boolean;
  /**
   * Told of every stored record that fails its checksum or does not decode; the record is
   * skipped and the rest kept. A torn last record (a crash mid-append) is not corruption and is
   * dropped silently. @default a warning line of the `store` logger
   */
  readonly onCorrupt?: CorruptionObserver;
}

export const FILE_STORE_DEFAULTS = {
  compactAfter: 1000,
  fsync: true,
} as const;

const fileStoreOptionsSchema = z.strictObject({
  dir: z.string().min(1, 'expected the path of a directory'),
  compactAfter: z.number().int().min(1).default(FILE_STORE_DEFAULTS.compactAfter),
  fsync: z.boolean().default(FILE_STORE_DEFAULTS.fsync),
  onCorrupt: z.custom<CorruptionObserver>(isFunction, 'expected a function').optional(),
});

export function parseFileStoreOptions(options: unknown) {
  return parseWith(fileStoreOptionsSchema, options, 'FileStore options', 'options');
}

export const REDIS_STORE_DEFAULTS = { prefix: 'agentcell:' } as const;

/** `redis`, `fence` and `onCorrupt` are objects or functions: the store checks their kind. */
export function parseRedisStoreOptions<R extends { readonly redis: string | Redis }>(
  options: R,
  isClient: (value: unknown) => boolean,
) {
  const schema = z.strictObject({
    redis: z.union([
      z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL'),
      z.custom<Redis>(isClient, 'expected a redis:// URL or an ioredis client'),
    ]),
    prefix: z.string().default(REDIS_STORE_DEFAULTS.prefix),
    fence: z.unknown().optional(),
    onCorrupt: z.custom<CorruptionObserver>(isFunction, 'expected a function').optional(),
  });
  return parseWith(schema, options, 'RedisStore options', 'options');
}
