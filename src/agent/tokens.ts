/**
 * The one token estimate: about four characters a token. Good enough for history windows,
 * budgets, a server that sends no usage, and the mock LLM's usage and pacing.
 */

/** Tokens in `text`, or in a text of `text` characters. */
export function estimateTokens(text: string | number): number {
  return Math.ceil((typeof text === 'number' ? text : text.length) / 4);
}
