/**
 * What a Redis did between two points: commands by name (INFO commandstats: calls and µs),
 * bytes in and out (INFO stats), and the CPU of its main thread, the one core every command
 * runs on (INFO cpu, Redis 7).
 */
import type { Redis } from 'ioredis';

export interface RedisSnapshot {
  readonly at: number;
  readonly commands: ReadonlyMap<string, { readonly calls: number; readonly usec: number }>;
  readonly netIn: number;
  readonly netOut: number;
  /** Main-thread CPU, user + system, in ms. */
  readonly mainCpuMs: number;
}

export interface RedisDelta {
  readonly seconds: number;
  readonly commands: ReadonlyMap<string, { readonly calls: number; readonly usec: number }>;
  readonly calls: number;
  /** Time in scripts (EVAL, EVALSHA, FCALL), commands they run included, in µs. */
  readonly scriptUsec: number;
  readonly netIn: number;
  readonly netOut: number;
  readonly mainCpuMs: number;
}

function fields(info: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of info.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) map.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return map;
}

export async function snapshot(redis: Redis): Promise<RedisSnapshot> {
  const info = fields(await redis.info('all'));
  const commands = new Map<string, { calls: number; usec: number }>();
  for (const [name, value] of info) {
    if (!name.startsWith('cmdstat_')) continue;
    const calls = Number(/calls=(\d+)/.exec(value)?.[1] ?? 0);
    const usec = Number(/usec=(\d+)/.exec(value)?.[1] ?? 0);
    commands.set(name.slice('cmdstat_'.length), { calls, usec });
  }
  const number = (name: string) => Number(info.get(name) ?? 0);
  return {
    at: performance.now(),
    commands,
    netIn: number('total_net_input_bytes'),
    netOut: number('total_net_output_bytes'),
    mainCpuMs:
      (number('used_cpu_user_main_thread') + number('used_cpu_sys_main_thread')) * 1000 ||
      (number('used_cpu_user') + number('used_cpu_sys')) * 1000,
  };
}

const SCRIPTS = new Set(['eval', 'evalsha', 'fcall', 'eval_ro', 'evalsha_ro', 'fcall_ro']);
/** What the measuring itself sends: not the cluster's load. */
const OURS = new Set(['info']);

export function delta(before: RedisSnapshot, after: RedisSnapshot): RedisDelta {
  const commands = new Map<string, { calls: number; usec: number }>();
  let calls = 0;
  let scriptUsec = 0;
  for (const [name, now] of after.commands) {
    if (OURS.has(name)) continue;
    const was = before.commands.get(name) ?? { calls: 0, usec: 0 };
    const moved = { calls: now.calls - was.calls, usec: now.usec - was.usec };
    if (moved.calls <= 0) continue;
    commands.set(name, moved);
    calls += moved.calls;
    if (SCRIPTS.has(name)) scriptUsec += moved.usec;
  }
  return {
    seconds: (after.at - before.at) / 1000,
    commands,
    calls,
    scriptUsec,
    netIn: after.netIn - before.netIn,
    netOut: after.netOut - before.netOut,
    mainCpuMs: after.mainCpuMs - before.mainCpuMs,
  };
}
