import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type AgentcellErrorCode,
  errorCatalogue,
  errorClasses,
  fromWire,
  isAgentcellError,
  isErrorWire,
  toWire,
} from '../src/errors.js';
import * as packageEntry from '../src/index.js';

const codes = Object.keys(errorCatalogue) as AgentcellErrorCode[];

describe('error catalogue', () => {
  it.each(codes)('%s has a class with that code, name, hint and status', (code) => {
    const spec = errorCatalogue[code];
    const ErrorOfCode = errorClasses[code];
    const plain = new ErrorOfCode();
    expect(plain.code).toBe(code);
    expect(plain.name).toBe(spec.name);
    expect(ErrorOfCode.name).toBe(spec.name);
    expect(plain.message).toBe(spec.hint);
    expect(plain.status).toBe(spec.status);
    expect(plain.isPublic).toBe(spec.public);
    expect(plain).toBeInstanceOf(Error);

    const specific = new ErrorOfCode('session "a" has 3 queued messages', {
      details: { queued: 3 },
    });
    expect(specific.message).toBe(`session "a" has 3 queued messages. ${spec.hint}`);
    expect(specific.details).toEqual({ queued: 3 });
    expect(isAgentcellError(specific, code)).toBe(true);
  });

  it('codes are stable AGENTCELL_* names and class names are unique', () => {
    for (const code of codes) expect(code).toMatch(/^AGENTCELL_[A-Z_]+$/);
    const names = codes.map((code) => errorCatalogue[code].name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('every error class is exported from the package entry under its name', () => {
    const entry = packageEntry as Record<string, unknown>;
    const missing = codes
      .map((code) => errorClasses[code])
      .filter((ErrorOfCode) => entry[ErrorOfCode.name] !== ErrorOfCode)
      .map((ErrorOfCode) => ErrorOfCode.name);
    expect(missing).toEqual([]);
  });

  it('every code is documented in the README error table, and no documented code is stale', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    // The error table of the "## Errors" section (other sections may name AGENTCELL_* variables).
    const start = readme.indexOf('\n## Errors');
    const table = readme.slice(start, readme.indexOf('\n## ', start + 1));
    const documented = new Set(
      table.match(/`AGENTCELL_[A-Z_]+`/g)?.map((code) => code.slice(1, -1)),
    );
    expect([...documented].sort()).toEqual([...codes].sort());
  });

  it('isAgentcellError checks the code, not the prototype', () => {
    expect(isAgentcellError({ code: 'AGENTCELL_MAILBOX_FULL' }, 'AGENTCELL_MAILBOX_FULL')).toBe(
      true,
    );
    expect(isAgentcellError({ code: 'AGENTCELL_MAILBOX_FULL' }, 'AGENTCELL_INTERRUPTED')).toBe(
      false,
    );
    expect(isAgentcellError(new Error('plain'))).toBe(false);
    expect(isAgentcellError({ code: 'ENOENT' })).toBe(false);
    expect(isAgentcellError(null)).toBe(false);
  });
});

describe('error wire form', () => {
  it.each(codes)('%s survives toWire → structuredClone → fromWire with its class', (code) => {
    const ErrorOfCode = errorClasses[code];
    const original = new ErrorOfCode('boom', { details: { at: 'here' } });
    const wire = structuredClone(toWire(original));
    expect(isErrorWire(wire)).toBe(true);
    const back = fromWire(wire);
    expect(back).toBeInstanceOf(ErrorOfCode);
    expect(back.code).toBe(code);
    expect(back.message).toBe(original.message);
    expect(back.details).toEqual({ at: 'here' });
    expect(back.stack).toBe(original.stack);
  });

  it('turns foreign throws into AGENTCELL_INTERNAL and drops details that cannot be cloned', () => {
    expect(fromWire(toWire(new TypeError('x is undefined'))).code).toBe('AGENTCELL_INTERNAL');
    expect(fromWire(toWire('a string')).message).toContain('a string');
    const withFunction = new errorClasses.AGENTCELL_TOOL_FAILED('x', { details: { fn: () => 1 } });
    expect(() => structuredClone(toWire(withFunction))).not.toThrow();
  });

  it('rejects shapes that are not wire errors', () => {
    expect(isErrorWire({ code: 'AGENTCELL_INTERNAL', message: 'x' })).toBe(false);
    expect(isErrorWire({ agentcellError: 1, code: 'NOPE', message: 'x' })).toBe(false);
    expect(isErrorWire(null)).toBe(false);
  });
});
