/**
 * The failures the mock LLM injects on request (rules, `[[mock:…]]` markers, the
 * `x-mock-fault` header): a 429 with retry headers, a 500, a body cut off mid-JSON, or a stall.
 */
import { type Exchange, JSON_HEADERS, SSE_HEADERS, sendError } from './mock-llm-http.js';
import type { ChatCompletionRequest, MockFaultKind } from './mock-llm-script.js';
import type { CompletionWriter } from './mock-llm-writer.js';

// Truncated JSON: a client must fail on these rather than read an empty completion.
const MALFORMED_STREAM =
  'data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","choices":[{\n\ndata: [DONE]\n\n';
const MALFORMED_JSON = '{"id":"chatcmpl-mock","object":"chat.completion","choices":[{"index":0,';

/** Answers the exchange with `fault`; a stall is written by `writer` and never ends. */
export function writeFault(
  exchange: Exchange,
  body: ChatCompletionRequest,
  fault: MockFaultKind,
  writer: CompletionWriter,
): void {
  const { res } = exchange;
  switch (fault) {
    case '429':
      sendError(res, 'rateLimited', 'Rate limit reached (mock).', {
        'retry-after-ms': '10',
        'retry-after': '0',
      });
      return;
    case '500':
      sendError(res, 'serverError', 'The server had an error (mock).');
      return;
    case 'malformed': {
      const streaming = body.stream === true;
      res.writeHead(200, streaming ? SSE_HEADERS : JSON_HEADERS);
      res.end(streaming ? MALFORMED_STREAM : MALFORMED_JSON);
      return;
    }
    case 'stall':
      writer.stall(exchange, body);
  }
}
