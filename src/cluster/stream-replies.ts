/**
 * Redis stream replies as plain values: the shapes XREAD and XREADGROUP answer with, read
 * defensively (anything not in the expected shape is skipped, never trusted).
 */

/** An entry's flat `[field, value, ...]` list as a map; pairs that are not two strings are skipped. */
export function streamFields(flat: unknown): Map<string, string> {
  const fields = new Map<string, string>();
  if (!Array.isArray(flat)) return fields;
  for (let index = 0; index + 1 < flat.length; index += 2) {
    const [name, value] = [flat[index], flat[index + 1]];
    if (typeof name === 'string' && typeof value === 'string') fields.set(name, value);
  }
  return fields;
}

/** The entries of an XREAD reply, `[[stream, [[id, [field, value, ...]], ...]], ...]`. */
export function streamEntries(result: unknown): [string, Map<string, string>][] {
  const entries: [string, Map<string, string>][] = [];
  if (!Array.isArray(result)) return entries;
  for (const stream of result) {
    if (!Array.isArray(stream) || !Array.isArray(stream[1])) continue;
    for (const entry of stream[1]) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !Array.isArray(entry[1])) {
        continue;
      }
      entries.push([entry[0], streamFields(entry[1])]);
    }
  }
  return entries;
}

/** The streams an XREAD reply has entries of. */
export function streamNames(result: unknown): string[] {
  if (!Array.isArray(result)) return [];
  return result.flatMap((stream: unknown) =>
    Array.isArray(stream) && typeof stream[0] === 'string' ? [stream[0]] : [],
  );
}
