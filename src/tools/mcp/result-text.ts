/**
 * What the model is told of an MCP tool's result: its text parts, and a short note for each
 * part it cannot read (images, audio, embedded resources), so a screenshot does not arrive as
 * megabytes of base64. A result the server marked as an error becomes a typed tool error.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { McpResultTooLargeError, McpToolFailedError } from '../../errors.js';

type Part = CallToolResult['content'][number];

function partText(part: Part): string {
  switch (part.type) {
    case 'text':
      return part.text;
    case 'image':
    case 'audio':
      return `[${part.type} ${part.mimeType}]`;
    case 'resource_link':
      return `[resource ${part.uri}]`;
    case 'resource':
      return 'text' in part.resource ? part.resource.text : `[resource ${part.resource.uri}]`;
    default:
      return `[${(part as { type: string }).type}]`;
  }
}

/** The result as text for the model; throws a typed error for an error result or one too large. */
export function resultText(result: CallToolResult, tool: string, maxBytes: number): string {
  const parts = result.content.map(partText);
  if (parts.length === 0 && result.structuredContent !== undefined) {
    parts.push(JSON.stringify(result.structuredContent));
  }
  const text = parts.join('\n');
  const bytes = Buffer.byteLength(text);
  if (bytes > maxBytes) {
    throw new McpResultTooLargeError(
      `${tool} returned ${bytes} bytes, more than the ${maxBytes} allowed`,
      { details: { bytes, maxBytes } },
    );
  }
  if (result.isError === true) {
    throw new McpToolFailedError(`${tool} failed: ${text.slice(0, 2000)}`);
  }
  return text;
}
