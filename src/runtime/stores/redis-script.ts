import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * A Lua script run by its SHA-1, loaded on first use. Falls back to sending the script when
 * Redis lost it (a restart or SCRIPT FLUSH), so callers never see NOSCRIPT.
 */
export class RedisScript {
  readonly lua: string;
  readonly sha: string;

  constructor(lua: string) {
    this.lua = lua;
    this.sha = createHash('sha1').update(lua, 'utf8').digest('hex');
  }

  async load(client: Redis): Promise<void> {
    await client.script('LOAD', this.lua);
  }

  async run(
    client: Redis,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      // Redis answers with a reply error whose text starts with its code; it has no other field.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}
