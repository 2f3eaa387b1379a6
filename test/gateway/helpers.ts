/**
 * Helpers for the gateway tests: a fetch client that keeps every body it received (for the
 * secret check), and SSE and Prometheus text parsers.
 */
import { expect } from 'vitest';
import { defineTool } from '../../src/tools/define-tool.js';
import { jsonOrUndefined } from '../support/harness.js';

export const SENTINEL = 'sk-SENTINEL-gw';

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown;
}

/** What an error response of the gateway looks like. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

export interface RequestOptions {
  readonly token?: string | undefined;
  /** JSON-encoded unless it is a string. */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

/** A client of one server that records every body it read. */
export class Client {
  readonly baseUrl: string;
  readonly bodies: string[];

  constructor(baseUrl: string, bodies: string[]) {
    this.baseUrl = baseUrl;
    this.bodies = bodies;
  }

  async request(method: string, path: string, options: RequestOptions = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token !== undefined) headers['authorization'] = `Bearer ${options.token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      ...(body !== undefined && { body }),
      ...(options.signal && { signal: options.signal }),
    });
    const text = await response.text();
    this.bodies.push(text);
    return {
      status: response.status,
      headers: response.headers,
      text,
      json: jsonOrUndefined(text),
    };
  }

  /** POST a message; `stream` asks for SSE. */
  send(token: string | undefined, key: string, body: unknown, stream = false): Promise<Answer> {
    return this.request('POST', `/v1/sessions/${encodeURIComponent(key)}/messages`, {
      token,
      body,
      ...(stream && { headers: { accept: 'text/event-stream' } }),
    });
  }
}

/**
 * A message body whose JSON string holds bytes that are not UTF-8 (`ff fe c3`): a decoder
 * that is not strict turns them into U+FFFD and runs an altered message.
 */
export const NOT_UTF8_BODY = new Uint8Array(
  Buffer.concat([
    Buffer.from('{"message":"caf'),
    Buffer.from([0xff, 0xfe, 0xc3]),
    Buffer.from('"}'),
  ]),
);

/** POSTs `body` (raw bytes) as JSON with `token`; the answer is read like {@link Client}'s. */
export async function postBytes(
  url: string,
  token: string,
  body: Uint8Array<ArrayBuffer> = NOT_UTF8_BODY,
): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: jsonOrUndefined(text) };
}

/** The error code of an answer (undefined when it is not an error body). */
export function codeOf(answer: Answer): string | undefined {
  return (answer.json as Partial<ErrorBody> | undefined)?.error?.code;
}

/** Checks that `answer` is exactly `{ error: { code, message } }` with `status`; returns the error. */
export function expectError(answer: Answer, status: number, code: string): ErrorBody['error'] {
  expect({ status: answer.status, code: codeOf(answer) }).toEqual({ status, code });
  const { error } = answer.json as ErrorBody;
  expect(Object.keys(answer.json as object)).toEqual(['error']);
  expect(Object.keys(error).sort()).toEqual(['code', 'message']);
  return error;
}

/** No body holds the apiKey sentinel, a stack trace or a stack property. */
export function expectNoSecrets(bodies: readonly string[], atLeast: number): void {
  expect(bodies.length).toBeGreaterThanOrEqual(atLeast);
  for (const body of bodies) expect(body).not.toContain(SENTINEL);
  expect(bodies.join('\n')).not.toMatch(/"stack"|\n\s+at /);
}

export interface SseFrame {
  readonly event: string;
  readonly data: unknown;
}

/**
 * Parses an event stream strictly as the gateway writes it: frames of `event: x` and one
 * `data: <json>` line, separated by a blank line; comment lines (`: ...`) are skipped.
 */
export function parseSse(text: string): SseFrame[] {
  if (!text.endsWith('\n\n')) throw new Error('the stream does not end with a blank line');
  return text
    .slice(0, -2)
    .split('\n\n')
    .filter((block) => !block.startsWith(':'))
    .map((block) => {
      const match = /^event: ([a-z-]+)\ndata: (.+)$/.exec(block);
      if (!match) throw new Error(`not an SSE frame: ${JSON.stringify(block)}`);
      return { event: match[1] ?? '', data: JSON.parse(match[2] ?? '') as unknown };
    });
}

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
  /** The sum of the values of `name` over the series carrying these labels, if any. */
  value(name: string, labels?: Readonly<Record<string, string>>): number | undefined;
}

const METRIC_NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
// NaN in any case, as Prometheus reads it (prom-client writes `Nan`).
const SAMPLE_LINE = new RegExp(
  `^(${METRIC_NAME})(?:\\{((?:${LABEL})(?:,(?:${LABEL}))*)?\\})? (-?(?:[0-9]+(?:\\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|\\+Inf|-Inf|[Nn][Aa][Nn]))$`,
);

/**
 * Parses Prometheus text exposition (0.0.4) and throws on any line that does not conform:
 * every sample belongs to a family declared by `# TYPE` before it, each histogram series has
 * cumulative buckets ending in `+Inf` equal to its `_count`.
 */
export function parseExposition(text: string): Exposition {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      if (types.has(type[1] ?? '')) throw new Error(`family ${type[1]} declared twice`);
      types.set(type[1] ?? '', type[2] ?? '');
      continue;
    }
    const match = SAMPLE_LINE.exec(line);
    if (!match) throw new Error(`not an exposition line: ${JSON.stringify(line)}`);
    const name = match[1] ?? '';
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] ?? ''] = (pair[2] ?? '').replace(/\\(.)/g, (_, c: string) =>
        c === 'n' ? '\n' : c,
      );
    }
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(family)) throw new Error(`sample ${name} has no # TYPE before it`);
    if (family !== name && !['histogram', 'summary'].includes(types.get(family) ?? '')) {
      throw new Error(`sample ${name} uses a histogram suffix on a ${types.get(family)}`);
    }
    const raw = match[3] ?? '';
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    samples.push({ name, labels, value });
  }
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    // One series per label set (le aside): each has its own buckets and count.
    const seriesOf = (labels: Readonly<Record<string, string>>) =>
      JSON.stringify(Object.entries(labels).filter(([name]) => name !== 'le'));
    const series = new Set(
      samples.filter((s) => s.name === `${family}_count`).map((s) => seriesOf(s.labels)),
    );
    for (const id of series) {
      const buckets = samples.filter(
        (s) => s.name === `${family}_bucket` && seriesOf(s.labels) === id,
      );
      const count = samples.find(
        (s) => s.name === `${family}_count` && seriesOf(s.labels) === id,
      )?.value;
      const values = buckets.map((b) => b.value);
      if (values.some((v, i) => i > 0 && v < (values[i - 1] ?? 0))) {
        throw new Error(`histogram ${family} buckets are not cumulative`);
      }
      if (buckets.at(-1)?.labels['le'] !== '+Inf' || buckets.at(-1)?.value !== count) {
        throw new Error(`histogram ${family} does not end in +Inf = _count`);
      }
    }
  }
  // The sum over the series that carry `labels` (and maybe more: an agent label, say).
  const value = (name: string, labels: Readonly<Record<string, string>> = {}) => {
    const matching = samples.filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
    return matching.length === 0 ? undefined : matching.reduce((sum, s) => sum + s.value, 0);
  };
  return { types, samples, value };
}

/**
 * A host tool `pay` (amount, card) of the kind approvals hold back, and the amounts it was run
 * with: a test sees whether, and how often, an approved call ran.
 */
export function payTool() {
  const paid: number[] = [];
  const pay = defineTool({
    name: 'pay',
    description: 'Pays an amount with a card',
    parameters: {
      type: 'object',
      properties: { amount: { type: 'number' }, card: { type: 'string' } },
    },
    host: true,
    run: (args) => {
      paid.push((args as { amount: number }).amount);
      return 'paid';
    },
  });
  return { pay, paid };
}
