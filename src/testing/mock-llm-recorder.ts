/**
 * What the mock LLM received: every request in order, which ones the client aborted, and the
 * waiters tests await instead of sleeping.
 */
import { EventEmitter } from 'node:events';
import type { ChatCompletionRequest } from './mock-llm-script.js';

/**
 * Request headers, lowercase. The common ones are declared so they read as `headers.authorization`
 * (an index signature alone would force `headers['authorization']`, which Biome rejects).
 */
export interface MockLlmRequestHeaders {
  readonly authorization?: string;
  readonly 'content-type'?: string;
  readonly 'x-mock-fault'?: string;
  readonly [name: string]: string | undefined;
}

/** One request as the mock received it. */
export interface MockLlmRequest {
  readonly method: string;
  /** Path without the query string, e.g. `/v1/chat/completions`. */
  readonly path: string;
  /** Header names are lowercase; repeated headers are joined with `, `. */
  readonly headers: MockLlmRequestHeaders;
  /** The parsed body; undefined when it was empty or not a valid chat completion request. */
  readonly body: ChatCompletionRequest | undefined;
  /** True when the client closed the connection before the response was complete. */
  aborted: boolean;
  /** `Date.now()` when the body had been read. */
  readonly receivedAt: number;
}

export interface MockLlmEvents {
  request: [MockLlmRequest];
  abort: [MockLlmRequest];
}

/** The requests since the last reset, and the aborts not yet handed to a waiter. */
export class RequestRecorder {
  readonly events = new EventEmitter<MockLlmEvents>();
  #requests: MockLlmRequest[] = [];
  #pendingAborts: MockLlmRequest[] = [];
  readonly #abortWaiters: ((request: MockLlmRequest) => void)[] = [];

  constructor() {
    // Load tests park thousands of waiters and streams; the default cap of 10 would warn.
    this.events.setMaxListeners(0);
  }

  get requests(): readonly MockLlmRequest[] {
    return this.#requests;
  }

  record(request: MockLlmRequest): void {
    this.#requests.push(request);
    this.events.emit('request', request);
  }

  /** The client went away before the response was complete. */
  aborted(request: MockLlmRequest): void {
    request.aborted = true;
    this.events.emit('abort', request);
    const waiter = this.#abortWaiters.shift();
    if (waiter) waiter(request);
    else this.#pendingAborts.push(request);
  }

  /** Forgets recorded requests and aborts no waiter has taken (waiters keep waiting). */
  reset(): void {
    this.#requests = [];
    this.#pendingAborts = [];
  }

  waitForRequests(n: number): Promise<void> {
    if (this.#requests.length >= n) return Promise.resolve();
    return new Promise((resolve) => {
      const onRequest = (): void => {
        if (this.#requests.length < n) return;
        this.events.off('request', onRequest);
        resolve();
      };
      this.events.on('request', onRequest);
    });
  }

  waitForAbort(): Promise<MockLlmRequest> {
    const pending = this.#pendingAborts.shift();
    if (pending) return Promise.resolve(pending);
    return new Promise((resolve) => this.#abortWaiters.push(resolve));
  }
}
