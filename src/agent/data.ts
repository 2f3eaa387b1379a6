/**
 * Plain configuration data: the values a config or blueprint may hold, and the one deep copy
 * and deep freeze used for them. `structuredClone` is not used because it rejects URL, and
 * superjson is not used because it is several times slower and throws on a `constructor` key.
 */
import { FORBIDDEN_KEYS } from '../codec.js';

/** Deeper than this is treated as hostile input rather than configuration. */
const MAX_DEPTH = 64;

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Whether `value` is data that can be copied, frozen and sent through the codec: primitives
 * (bigint and undefined included), Date, RegExp, URL, Map, Set, arrays and plain objects, with
 * no functions, class instances or cycles.
 */
export function isCopyableData(value: unknown, depth = 0): boolean {
  if (value === null || typeof value !== 'object') {
    return typeof value !== 'function' && typeof value !== 'symbol';
  }
  if (depth > MAX_DEPTH) return false;
  if (value instanceof Date) return !Number.isNaN(value.getTime());
  if (value instanceof RegExp || value instanceof URL) return true;
  if (value instanceof Map) {
    for (const [k, v] of value) {
      if (!isCopyableData(k, depth + 1) || !isCopyableData(v, depth + 1)) return false;
    }
    return true;
  }
  if (value instanceof Set) {
    for (const v of value) if (!isCopyableData(v, depth + 1)) return false;
    return true;
  }
  if (!Array.isArray(value) && !isPlainObject(value)) return false;
  for (const [key, v] of Object.entries(value)) {
    if (FORBIDDEN_KEYS.has(key) || !isCopyableData(v, depth + 1)) return false;
  }
  return true;
}

/** A deep copy of data accepted by {@link isCopyableData}. */
export function copyData<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return new Date(value.getTime()) as T;
  if (value instanceof RegExp) return new RegExp(value.source, value.flags) as T;
  if (value instanceof URL) return new URL(value.href) as T;
  if (value instanceof Map) {
    return new Map([...value].map(([k, v]) => [copyData(k), copyData(v)])) as T;
  }
  if (value instanceof Set) return new Set([...value].map((v) => copyData(v))) as T;
  if (Array.isArray(value)) return value.map((v) => copyData(v)) as T;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    // An own "__proto__" key must stay data; assigning it would replace the prototype.
    if (key === '__proto__') {
      Object.defineProperty(out, key, { value: copyData(v), enumerable: true, writable: true });
    } else {
      out[key] = copyData(v);
    }
  }
  return out as T;
}

/**
 * Freezes arrays and plain objects all the way down and returns the same value. RegExp, Map,
 * Set and Date are left alone: freezing them protects nothing (their state is internal) and a
 * frozen RegExp with the `g` flag cannot even be used.
 */
export function freezeData<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  if (!Array.isArray(value) && !isPlainObject(value)) return value;
  for (const v of Object.values(value)) freezeData(v);
  return Object.freeze(value);
}

/**
 * Whether `value` is plain JSON (what a JSON Schema is): unlike config data, keys such as
 * `constructor` are fine here, since a schema may describe a property of that name.
 */
export function isJsonValue(value: unknown, depth = 0): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object' || depth > MAX_DEPTH) return false;
  if (Array.isArray(value)) return value.every((item) => isJsonValue(item, depth + 1));
  if (!isPlainObject(value)) return false;
  return Object.values(value).every((item) => isJsonValue(item, depth + 1));
}
