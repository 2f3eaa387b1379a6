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
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set([
  '__proto__',
  'constructor',
  'prototype',
]);

/** Nesting deeper than this is hostile input, not data. */
export const MAX_DATA_DEPTH = 64;

export function encode(value: unknown): string {
  return codec.stringify(value);
}

export interface DecodeLimits {
  /** Largest input accepted, in UTF-8 bytes. */
  readonly maxBytes: number;
  /** Names the decoded value in problem paths. @default 'input' */
  readonly root?: string;
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
  problems.push(...metaProblems((envelope as { meta?: unknown }).meta));
  if (problems.length > 0) return { problems };
  let value: unknown;
  try {
    value = codec.deserialize(envelope as Parameters<typeof codec.deserialize>[0]);
  } catch (error) {
    return { problems: [`input: superjson could not revive it (${(error as Error).message})`] };
  }
  // referentialEqualities may point a value at its own ancestor: data must stay a tree (or DAG).
  const cycle = cyclePath(value, new Set(), limits.root ?? 'input');
  if (cycle !== undefined)
    return { problems: [`${cycle}: refers to one of its own ancestors (a cycle)`] };
  return { value };
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

/**
 * superjson trusts its `meta` annotations and recurses through malformed ones until the stack
 * runs out, so their shape is checked first: `values` is a tree of `[annotation, children?]`,
 * `referentialEqualities` maps paths to lists of paths.
 */
function metaProblems(meta: unknown): string[] {
  if (meta === undefined) return [];
  if (!isRecord(meta)) return ['meta: expected an object'];
  const problems = Object.keys(meta)
    .filter((key) => key !== 'values' && key !== 'referentialEqualities' && key !== 'v')
    .map((key) => `meta.${key}: not a superjson annotation`);
  if (meta['values'] !== undefined && !isAnnotationTree(meta['values'], 0)) {
    problems.push('meta.values: malformed superjson annotations');
  }
  const equalities = meta['referentialEqualities'];
  if (equalities !== undefined && !isReferentialEqualities(equalities)) {
    problems.push('meta.referentialEqualities: malformed superjson annotations');
  }
  return problems;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isAnnotation(value: unknown): boolean {
  return (
    typeof value === 'string' ||
    (Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      typeof value[1] === 'string')
  );
}

/** `values` is one node (for a root value) or a record of path → node. */
function isAnnotationTree(values: unknown, depth: number): boolean {
  return isNode(values, depth) || isChildren(values, depth);
}

/** A node is `[annotation]` or `[annotation, { path: node, … }]`. */
function isNode(node: unknown, depth: number): boolean {
  if (depth > MAX_DATA_DEPTH || !Array.isArray(node)) return false;
  if (node.length !== 1 && node.length !== 2) return false;
  return isAnnotation(node[0]) && (node.length === 1 || isChildren(node[1], depth + 1));
}

function isChildren(node: unknown, depth: number): boolean {
  return isRecord(node) && Object.values(node).every((child) => isNode(child, depth));
}

function isReferentialEqualities(value: unknown): boolean {
  const check = (entry: unknown) =>
    Array.isArray(entry) && entry.every((path) => typeof path === 'string');
  if (Array.isArray(value))
    return value.length <= 2 && value.every((part) => check(part) || isRecord(part));
  return isRecord(value) && Object.values(value).every(check);
}

function cyclePath(value: unknown, ancestors: Set<object>, path: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if (ancestors.has(value)) return path;
  ancestors.add(value);
  const entries: Iterable<[unknown, unknown]> =
    value instanceof Map || value instanceof Set ? [...value.entries()] : Object.entries(value);
  let index = 0;
  for (const [key, child] of entries) {
    const childPath = `${path}.${typeof key === 'string' ? key : index}`;
    index++;
    const found =
      cyclePath(child, ancestors, childPath) ??
      (value instanceof Map ? cyclePath(key, ancestors, childPath) : undefined);
    if (found !== undefined) return found;
  }
  ancestors.delete(value);
  return undefined;
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
