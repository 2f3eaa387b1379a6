/** The Redis start command that the Redis tests print is the one .ci/run runs and the README shows. */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { START_REDIS } from './redis.js';

const REPO = resolve(import.meta.dirname, '../..');

describe('the Redis start command', () => {
  it('is the same in .ci/run, the README and the tests', () => {
    expect(readFileSync(join(REPO, '.ci/run'), 'utf8')).toContain(`  ${START_REDIS}\n`);
    expect(readFileSync(join(REPO, 'README.md'), 'utf8')).toContain(`\n${START_REDIS}\n`);
  });
});
