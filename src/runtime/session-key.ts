import { SessionKeyInvalidError } from '../errors.js';

const MAX_KEY_LENGTH = 256;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Checks a session key from a caller: 1 to 256 printable characters, no path separators and
 * no "..", because keys name files in the file store and appear in logs and URLs.
 */
export function assertSessionKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new SessionKeyInvalidError(
      typeof key === 'string'
        ? `a session key of ${key.length} characters`
        : `a session key of type ${typeof key}`,
    );
  }
  // A lone surrogate has no UTF-8 form: two such keys would name the same file and the same log line.
  if (
    !key.isWellFormed() ||
    CONTROL.test(key) ||
    key.includes('/') ||
    key.includes('\\') ||
    key.includes('..')
  ) {
    throw new SessionKeyInvalidError(
      `the session key ${JSON.stringify(key.slice(0, 64))} has a forbidden character`,
    );
  }
}
