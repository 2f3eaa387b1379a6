/**
 * How the mock LLM writes a completion: one JSON body, or an SSE stream paced by the latency
 * model, with usage and ids as OpenAI sends them. Frames are built from text fixed per stream,
 * so a long run of streams costs little.
 */
import { FrameSource, OPENING_DELTA } from './mock-llm-frames.js';
import { type Exchange, JSON_HEADERS, SSE_HEADERS } from './mock-llm-http.js';
import { FramePacing, type MockLatency, totalDelayMs } from './mock-llm-pacing.js';
import {
  type Action,
  type ChatCompletionRequest,
  completionTokens,
  promptTokens,
} from './mock-llm-script.js';

interface FrameParts {
  /** `data: {` plus the fields every chunk of the stream shares. */
  readonly prefix: string;
  /** Everything up to a choice's delta. */
  readonly head: string;
  /** Everything after a non-final choice's delta. */
  readonly tail: string;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function finishReason(plan: Action): string {
  return plan.kind === 'reply' ? 'stop' : 'tool_calls';
}

/** Writes completions; owns the latency and the id counter of completions and tool calls. */
export class CompletionWriter {
  #latency: MockLatency;
  #nextId = 0;

  constructor(latency: MockLatency) {
    this.#latency = latency;
  }

  setLatency(latency: MockLatency): void {
    this.#latency = latency;
  }

  /** Restarts ids at 0. */
  resetIds(): void {
    this.#nextId = 0;
  }

  /** Answers with the plan: streamed when the request asked for a stream, else one JSON body. */
  write(exchange: Exchange, body: ChatCompletionRequest, plan: Action): void {
    if (body.stream === true) this.#stream(exchange, body, plan);
    else this.#json(exchange, body, plan);
  }

  /** Sends headers (and for streams the first chunk), then nothing until someone disconnects. */
  stall({ res }: Exchange, body: ChatCompletionRequest): void {
    if (body.stream !== true) {
      res.writeHead(200, JSON_HEADERS);
      res.flushHeaders();
      return;
    }
    res.writeHead(200, SSE_HEADERS);
    const { head, tail } = this.#frameParts(body, this.#completionId());
    res.write(`${head}${OPENING_DELTA}${tail}`);
  }

  #completionId(): string {
    return `chatcmpl-mock-${this.#nextId++}`;
  }

  #toolCallIds(plan: Action): string[] {
    return plan.kind === 'toolCalls' ? plan.calls.map(() => `call_${this.#nextId++}`) : [];
  }

  #usage(body: ChatCompletionRequest, plan: Action): string {
    const prompt = promptTokens(body.messages);
    const completion = completionTokens(plan);
    return `{"prompt_tokens":${prompt},"completion_tokens":${completion},"total_tokens":${prompt + completion}}`;
  }

  #json(exchange: Exchange, body: ChatCompletionRequest, plan: Action): void {
    const ids = this.#toolCallIds(plan);
    const message =
      plan.kind === 'reply'
        ? { role: 'assistant', content: plan.text, refusal: null }
        : {
            role: 'assistant',
            content: null,
            refusal: null,
            tool_calls: plan.calls.map((call, i) => ({
              id: ids[i],
              type: 'function',
              function: { name: call.name, arguments: call.arguments },
            })),
          };
    const payload = `{"id":"${this.#completionId()}","object":"chat.completion","created":${nowSeconds()},"model":${JSON.stringify(body.model)},"choices":[{"index":0,"message":${JSON.stringify(message)},"logprobs":null,"finish_reason":"${finishReason(plan)}"}],"usage":${this.#usage(body, plan)}}`;
    const send = (): void => {
      exchange.timer = undefined;
      exchange.res.writeHead(200, JSON_HEADERS);
      exchange.res.end(payload);
    };
    const delay = totalDelayMs(this.#latency, completionTokens(plan));
    if (delay <= 0) send();
    else exchange.timer = setTimeout(send, delay);
  }

  /** The fixed text around every delta, built once per stream instead of once per chunk. */
  #frameParts(body: ChatCompletionRequest, id: string): FrameParts {
    const usageNull = body.stream_options?.include_usage === true ? ',"usage":null' : '';
    const prefix = `data: {"id":"${id}","object":"chat.completion.chunk","created":${nowSeconds()},"model":${JSON.stringify(body.model)},`;
    return {
      prefix,
      head: `${prefix}"choices":[{"index":0,"delta":`,
      tail: `,"logprobs":null,"finish_reason":null}]${usageNull}}\n\n`,
    };
  }

  #stream(exchange: Exchange, body: ChatCompletionRequest, plan: Action): void {
    const parts = this.#frameParts(body, this.#completionId());
    const frames = new FrameSource(parts.head, parts.tail, plan, this.#toolCallIds(plan));
    const end = this.#streamEnd(body, plan, parts);
    const { res } = exchange;
    res.writeHead(200, SSE_HEADERS);
    const pacing = new FramePacing(this.#latency, performance.now());
    let sent = 0;
    const pump = (): void => {
      exchange.timer = undefined;
      const now = performance.now();
      // One write per tick: each write is a syscall and a chunked-encoding frame of its own.
      let batch = '';
      while (!frames.done && pacing.isDue(sent, now)) {
        batch += frames.next();
        sent++;
      }
      if (frames.done) {
        res.end(batch + end);
        return;
      }
      if (batch !== '') res.write(batch);
      exchange.timer = setTimeout(pump, pacing.delayUntil(sent, performance.now()));
    };
    if (pacing.firstMs > 0) exchange.timer = setTimeout(pump, pacing.firstMs);
    else pump();
  }

  #streamEnd(body: ChatCompletionRequest, plan: Action, { prefix, head }: FrameParts): string {
    const includeUsage = body.stream_options?.include_usage === true;
    let end = `${head}{},"logprobs":null,"finish_reason":"${finishReason(plan)}"}]${includeUsage ? ',"usage":null' : ''}}\n\n`;
    if (includeUsage) {
      end += `${prefix}"choices":[],"usage":${this.#usage(body, plan)}}\n\n`;
    }
    return `${end}data: [DONE]\n\n`;
  }
}
