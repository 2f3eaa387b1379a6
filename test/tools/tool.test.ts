/**
 * defineTool: JSON Schema and zod parameters, the three kinds, and every invalid definition
 * rejected with AGENTCELL_TOOL_INVALID.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTool, type ToolDefinition } from '../../src/tools/define-tool.js';
import { describeTool, isTool } from '../../src/tools/tool.js';
import { caught } from '../support/harness.js';

/** Defines a tool from a definition the type system would refuse (bad input). */
function defineFrom(definition: unknown) {
  return defineTool(definition as ToolDefinition);
}

const run = () => 'ok';

describe('defineTool with a JSON Schema', () => {
  const parameters = {
    type: 'object',
    properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1 } },
    required: ['city'],
  };
  const tool = defineTool({ name: 'weather', description: 'Weather for a city', parameters, run });

  it('keeps name, description, parameters and run, as a function tool', () => {
    expect(tool.name).toBe('weather');
    expect(tool.description).toBe('Weather for a city');
    expect(tool.parameters).toEqual(parameters);
    expect(tool.kind).toBe('function');
    expect(tool.run).toBe(run);
    expect(tool.factory).toBeUndefined();
  });

  it('is frozen all the way down and does not share the caller’s schema object', () => {
    expect(Object.isFrozen(tool)).toBe(true);
    expect(Object.isFrozen(tool.parameters)).toBe(true);
    expect(Object.isFrozen(tool.parameters['properties'])).toBe(true);
    expect(tool.parameters).not.toBe(parameters);
    const input = { type: 'object', properties: { a: { type: 'string' } } };
    const copied = defineTool({ name: 'copied', description: '', parameters: input, run });
    input.properties.a.type = 'number';
    expect(copied.parameters).toEqual({ type: 'object', properties: { a: { type: 'string' } } });
  });

  it('defaults to a schema of no arguments', () => {
    const bare = defineTool({ name: 'now', description: 'The time', run });
    expect(bare.parameters).toEqual({ type: 'object', properties: {} });
  });

  it('accepts a schema with properties named constructor and prototype', () => {
    const schema = {
      type: 'object',
      properties: { constructor: { type: 'string' }, prototype: { type: 'string' } },
    };
    expect(
      defineTool({ name: 'ctor', description: '', parameters: schema, run }).parameters,
    ).toEqual(schema);
  });
});

describe('defineTool with a zod schema', () => {
  const tool = defineTool({
    name: 'weather',
    description: 'Weather for a city',
    parameters: z.object({
      city: z.string().describe('the city'),
      days: z.number().int().min(1).optional(),
      units: z.enum(['c', 'f']),
    }),
    run: ({ city }) => city,
  });

  it('converts it to a JSON Schema object without a $schema key', () => {
    expect(tool.parameters).not.toHaveProperty('$schema');
    expect(tool.parameters).toMatchObject({
      type: 'object',
      properties: {
        city: { type: 'string', description: 'the city' },
        days: { type: 'integer', minimum: 1 },
        units: { type: 'string', enum: ['c', 'f'] },
      },
    });
    expect(tool.parameters['required']).toEqual(expect.arrayContaining(['city', 'units']));
    expect(tool.parameters['required']).not.toContain('days');
  });

  it('gives plain, frozen data that survives JSON and structured clone', () => {
    expect(Object.isFrozen(tool.parameters)).toBe(true);
    expect(JSON.parse(JSON.stringify(tool.parameters))).toEqual(tool.parameters);
    expect(structuredClone(tool.parameters)).toEqual(tool.parameters);
  });
});

describe('defineTool kinds', () => {
  it.each<readonly [string, ToolDefinition, string]>([
    ['run', { name: 'a', description: '', run }, 'function'],
    ['factory', { name: 'a', description: '', factory: () => ({ run }) }, 'factory'],
    ['host + run', { name: 'a', description: '', host: true, run }, 'host'],
    ['host: false + run', { name: 'a', description: '', host: false, run }, 'function'],
  ])('%s makes a %s tool', (_label, definition, kind) => {
    const tool = defineTool(definition);
    expect(tool.kind).toBe(kind);
    expect(isTool(tool)).toBe(true);
  });
});

describe('defineTool rejects invalid definitions with AGENTCELL_TOOL_INVALID', () => {
  it.each<readonly [string, Record<string, unknown>, string]>([
    ['an empty name', { name: '', description: '', run }, 'name:'],
    ['a name with a space', { name: 'get weather', description: '', run }, 'name:'],
    ['a name with a dot', { name: 'get.weather', description: '', run }, 'name:'],
    ['a name with a slash', { name: 'tools/weather', description: '', run }, 'name:'],
    ['a name of 65 characters', { name: 'a'.repeat(65), description: '', run }, 'name:'],
    ['a name that is not a string', { name: 42, description: '', run }, 'name:'],
    ['no name', { description: '', run }, 'name:'],
    ['a description that is not a string', { name: 'a', description: 42, run }, 'description:'],
    ['no implementation', { name: 'a', description: '' }, 'run/factory:'],
    [
      'both run and factory',
      { name: 'a', description: '', run, factory: () => ({ run }) },
      'run/factory:',
    ],
    ['run that is not a function', { name: 'a', description: '', run: 'ok' }, 'run/factory:'],
    ['run that is null', { name: 'a', description: '', run: null }, 'run/factory:'],
    ['factory that is not a function', { name: 'a', description: '', factory: {} }, 'run/factory:'],
    [
      'host with a factory',
      { name: 'a', description: '', host: true, factory: () => ({ run }) },
      'host:',
    ],
    ['host without run', { name: 'a', description: '', host: true }, 'run/factory:'],
    [
      'parameters that are a string',
      { name: 'a', description: '', parameters: 'object', run },
      'parameters:',
    ],
    [
      'parameters that are a number',
      { name: 'a', description: '', parameters: 42, run },
      'parameters:',
    ],
    [
      'parameters that are null',
      { name: 'a', description: '', parameters: null, run },
      'parameters:',
    ],
    [
      'parameters that are true',
      { name: 'a', description: '', parameters: true, run },
      'parameters:',
    ],
    [
      'parameters that are an array',
      { name: 'a', description: '', parameters: [{ type: 'string' }], run },
      'parameters:',
    ],
    [
      'parameters that are a Map',
      { name: 'a', description: '', parameters: new Map([['type', 'object']]), run },
      'parameters:',
    ],
    [
      'parameters holding a function',
      { name: 'a', description: '', parameters: { type: 'object', default: () => 1 }, run },
      'parameters:',
    ],
  ])('%s', (_label, definition, problem) => {
    const error = caught(() => defineFrom(definition));
    expect(error.code).toBe('AGENTCELL_TOOL_INVALID');
    expect(error.message).toContain(problem);
    expect(error.details?.problems?.some((line) => line.startsWith(problem))).toBe(true);
  });

  it('lists every problem of one definition', () => {
    const error = caught(() =>
      defineFrom({ name: 'bad name', description: 1, parameters: 'x', host: true }),
    );
    expect(error.code).toBe('AGENTCELL_TOOL_INVALID');
    expect(error.details?.problems).toHaveLength(4);
    for (const problem of ['name:', 'description:', 'run/factory:', 'parameters:']) {
      expect(error.message).toContain(problem);
    }
  });
});

describe('isTool and describeTool', () => {
  const tool = defineTool({ name: 'a', description: 'd', run });

  it.each<readonly [string, unknown, boolean]>([
    ['a tool made by defineTool', tool, true],
    [
      'a plain object shaped like a tool',
      { name: 'a', description: '', parameters: {}, kind: 'host' },
      true,
    ],
    [
      'an object with an unknown kind',
      { name: 'a', description: '', parameters: {}, kind: 'script' },
      false,
    ],
    ['an object without parameters', { name: 'a', description: '', kind: 'function' }, false],
    ['null', null, false],
    ['a function', run, false],
    ['a string', 'a', false],
  ])('isTool(%s) is %s', (_label, value, expected) => {
    expect(isTool(value)).toBe(expected);
  });

  it('describeTool gives plain data without the implementation', () => {
    const descriptor = describeTool(tool);
    expect(descriptor).toEqual({
      name: 'a',
      description: 'd',
      parameters: tool.parameters,
      kind: 'function',
    });
    expect(descriptor).not.toHaveProperty('run');
    expect(structuredClone(descriptor)).toEqual(descriptor);
  });
});
