/**
 * What a person asked to approve a call is shown of its arguments: the parsed arguments with
 * the values at `approval.redact` paths replaced, so a card number or a token never reaches a
 * chat channel, a browser or a log.
 */

const REDACTED = '[redacted]';

/**
 * The call's arguments (a JSON string, as the model sent them) with each dot path of `paths`
 * hidden; arguments that are not JSON are shown as their text, or hidden whole if any path is set.
 *
 * @example
 * redactArguments('{"card":{"number":"4242"},"amount":5}', ['card.number']);
 * // → { card: { number: '[redacted]' }, amount: 5 }
 */
export function redactArguments(json: string, paths: readonly string[] = []): unknown {
  let value: unknown;
  try {
    value = JSON.parse(json || '{}');
  } catch {
    return paths.length > 0 ? REDACTED : json;
  }
  for (const path of paths) value = hide(value, path.split('.'));
  return value;
}

function hide(value: unknown, path: readonly string[]): unknown {
  const [head, ...rest] = path;
  if (head === undefined || typeof value !== 'object' || value === null) return value;
  if (!Object.hasOwn(value, head)) return value;
  const copy: Record<string, unknown> = Array.isArray(value)
    ? ([...value] as unknown as Record<string, unknown>)
    : { ...(value as Record<string, unknown>) };
  copy[head] = rest.length === 0 ? REDACTED : hide(copy[head], rest);
  return copy;
}
