/**
 * The one superjson instance, for blueprints, journals and snapshots (never for per-token
 * events: structured clone is several times faster for those), and the guarded decoder every
 * piece of outside input goes through.
 */
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import SuperJSON from 'superjson';
import { type ErrorWire, fromWire, isErrorWire, toWire } from './errors.js';

export const codec = new SuperJSON({ dedupe: false });

/** Keys that could reach a prototype if data were ever assigned naively. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Nesting deeper than this is hostile input, not data. */
export const MAX_DATA_DEPTH = 64;

export function encode(value: unknown): string {
  return codec.stringify(value);
}

export interface DecodeLimits {
  /** Largest input accepted, in UTF-8 bytes. */
  readonly maxBytes: number;
}

export type Decoded = { readonly value: unknown } | { readonly problems: readonly string[] };

/**
 * Decodes superjson text from outside: size-limited, parsed as JSON, scanned for
 * prototype-polluting keys and excessive depth, and only then revived by superjson. Never
 * throws; every problem is returned with its path.
 */
export function decodeUntrusted(text: unknown, limits: DecodeLimits): Decoded {
  if (typeof text !== 'string')
    return { problems: [`input: expected a string, got ${typeName(text)}`] };
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.maxBytes) {
    return { problems: [`input: ${bytes} bytes is over the limit of ${limits.maxBytes} bytes`] };
  }
  let envelope: unknown;
  try {
    envelope = JSON.parse(text);
  } catch (error) {
    return { problems: [`input: not JSON (${(error as Error).message})`] };
  }
  if (typeof envelope !== 'object' || envelope === null || !('json' in envelope)) {
    return { problems: ['input: expected superjson output ({"json": ..., "meta"?: ...})'] };
  }
  const problems = findUnsafeKeys(envelope, '');
  if (problems.length > 0) return { problems };
  try {
    return { value: codec.deserialize(envelope as Parameters<typeof codec.deserialize>[0]) };
  } catch (error) {
    return { problems: [`input: superjson could not revive it (${(error as Error).message})`] };
  }
}

/** Paths of keys that could pollute a prototype, and of nesting past {@link MAX_DATA_DEPTH}. */
export function findUnsafeKeys(
  root: unknown,
  rootPath: string,
  forbidden = FORBIDDEN_KEYS,
): string[] {
  const problems: string[] = [];
  const stack: { value: unknown; path: string; depth: number }[] = [
    { value: root, path: rootPath, depth: 0 },
  ];
  while (stack.length > 0 && problems.length < 20) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > MAX_DATA_DEPTH) {
      problems.push(`${path || '(root)'}: nested deeper than ${MAX_DATA_DEPTH} levels`);
      continue;
    }
    for (const key of Object.keys(value)) {
      const childPath = path ? `${path}.${key}` : key;
      if (forbidden.has(key)) {
        problems.push(`${childPath}: the key "${key}" is not allowed (prototype pollution)`);
      } else {
        stack.push({
          value: (value as Record<string, unknown>)[key],
          path: childPath,
          depth: depth + 1,
        });
      }
    }
  }
  return problems;
}

function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/**
 * comlink keeps only name, message and stack of a thrown error, so a remote call's failure
 * would lose its class and code. Thrown values cross in our wire form instead. The handler
 * table is module-global: installing it here, on first import of the codec, covers both the
 * host and every worker.
 */
const defaultThrowHandler = Comlink.transferHandlers.get('throw');
if (defaultThrowHandler) {
  Comlink.transferHandlers.set('throw', {
    canHandle: defaultThrowHandler.canHandle,
    serialize: (thrown: unknown) => [{ wire: toWire((thrown as { value: unknown }).value) }, []],
    deserialize: (serialized: unknown) => {
      const wire = (serialized as { wire?: ErrorWire }).wire;
      throw isErrorWire(wire) ? fromWire(wire) : new Error('a remote call failed without an error');
    },
  });
}

/** A comlink endpoint over a Node MessagePort, Worker or parentPort. */
export function endpointOf(port: Parameters<typeof nodeEndpoint>[0]): Comlink.Endpoint {
  return nodeEndpoint(port);
}
