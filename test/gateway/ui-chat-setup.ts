/**
 * The world of the UI message stream tests: agents `echo` (the default, with a `lookup` host
 * tool the mock calls for messages starting "weather", a `broken` one for "broken", and the
 * gate for "hold") and `other`; tenants `acme` and `globex`; the `ai` package's
 * `DefaultChatTransport` for each, and a chat helper that keeps the client's transcript as
 * `useChat` does.
 */
import { randomUUID } from 'node:crypto';
import { DefaultChatTransport, readUIMessageStream, type UIMessage, type UIMessageChunk } from 'ai';
import { lastUserText } from '../../src/testing/mock-llm-script.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { messagesOf } from '../support/harness.js';
import { type ServedGateway, useGateway, useWorld, type World } from './setup.js';

export const ACME = 'acme-token-0123456789abcdef';
export const GLOBEX = 'globex-token-0123456789abcdef';
export const BODY_LIMIT = 8_192;

export interface UiWorld {
  readonly world: World;
  readonly served: Omit<ServedGateway, 'close'>;
  /** `DefaultChatTransport` of `token` on this gateway (acme's by default). */
  transport(token?: string, body?: object): DefaultChatTransport<UIMessage>;
  /** The user and assistant texts of the last model request whose last user text is `last`. */
  dialogueSeenFor(last: string): string[];
  /** How many model requests ended in the user text `last`. */
  requestsFor(last: string): number;
}

/** The world of the enclosing suite. */
export function useUiWorld(): UiWorld {
  const lookup = defineTool({
    name: 'lookup',
    description: 'Looks the weather up',
    host: true,
    run: () => 'sunny, 21 °C',
  });
  const broken = defineTool({
    name: 'broken',
    description: 'Always fails',
    host: true,
    run: () => {
      throw new Error('the broken tool broke');
    },
  });
  const world = useWorld(({ supervisor, agent, mock, gate }) => {
    mock.setRules([
      {
        match: /^weather/,
        steps: [
          { toolCalls: [{ name: 'lookup', arguments: { city: 'Paris' } }] },
          { reply: 'Sunny in Paris.' },
        ],
      },
      {
        match: /^broken/,
        steps: [{ toolCalls: [{ name: 'broken', arguments: {} }] }, { reply: 'It broke.' }],
      },
      { match: /^hold/, steps: [{ toolCalls: [{ name: 'gate', arguments: {} }] }] },
      { match: /^explode/, steps: [{ fault: { kind: '500' } }] },
    ]);
    supervisor.register('echo', agent('echo', { tools: [lookup, broken, gate.tool] }));
    supervisor.register('other', agent('other'), { warmPoolSize: 0 });
  });
  const served = useGateway(world, {
    tenants: { [ACME]: { id: 'acme' }, [GLOBEX]: { id: 'globex' } },
    defaultAgent: 'echo',
    maxBodyBytes: BODY_LIMIT,
  });
  const lastRequests = (last: string) =>
    world.mock.requests.flatMap((request, index) =>
      request.body !== undefined && lastUserText(request.body.messages) === last ? [index] : [],
    );
  return {
    world,
    served,
    transport: (token = ACME, body = {}) =>
      new DefaultChatTransport<UIMessage>({
        api: `${served.server.url}/v1/ui/chat`,
        headers: { authorization: `Bearer ${token}` },
        body,
      }),
    dialogueSeenFor: (last) => {
      const index = lastRequests(last).at(-1);
      if (index === undefined) throw new Error(`the mock got no request ending in ${last}`);
      return messagesOf(world.mock, index)
        .filter((message) => message.role === 'user' || message.role === 'assistant')
        .map((message) => `${message.role}: ${String(message.content)}`);
    },
    requestsFor: (last) => lastRequests(last).length,
  };
}

export function userMessage(text: string): UIMessage {
  return { id: randomUUID(), role: 'user', parts: [{ type: 'text', text }] };
}

export function assistantSaid(text: string): UIMessage {
  return { id: randomUUID(), role: 'assistant', parts: [{ type: 'text', text }] };
}

/** The assistant message a stream of chunks builds, and the errors the stream reported. */
export async function assemble(
  stream: ReadableStream<UIMessageChunk>,
): Promise<{ message: UIMessage; errors: Error[] }> {
  const errors: Error[] = [];
  let message: UIMessage | undefined;
  for await (const snapshot of readUIMessageStream({
    stream,
    onError: (e) => errors.push(e as Error),
  })) {
    message = snapshot;
  }
  if (!message) throw new Error('the stream built no message');
  return { message, errors };
}

/** A chat as `useChat` keeps it: the transcript grows by each user message and answer. */
export class UiChat {
  readonly id: string;
  readonly messages: UIMessage[] = [];
  readonly #transport: DefaultChatTransport<UIMessage>;

  constructor(transport: DefaultChatTransport<UIMessage>, id: string) {
    this.#transport = transport;
    this.id = id;
  }

  /** Sends `text` and waits for the whole answer. */
  async send(text: string): Promise<UIMessage> {
    this.messages.push(userMessage(text));
    return this.#answer('submit-message', undefined);
  }

  /** Drops the last answer and asks for it again, as `regenerate()` does. */
  async regenerate(): Promise<UIMessage> {
    const last = this.messages.pop();
    if (last?.role !== 'assistant') throw new Error('no answer to regenerate');
    return this.#answer('regenerate-message', last.id);
  }

  async #answer(
    trigger: 'submit-message' | 'regenerate-message',
    messageId: string | undefined,
  ): Promise<UIMessage> {
    const stream = await this.#transport.sendMessages({
      chatId: this.id,
      messages: this.messages,
      trigger,
      messageId,
      abortSignal: undefined,
    });
    const { message, errors } = await assemble(stream);
    if (errors.length > 0) throw errors[0];
    this.messages.push(message);
    return message;
  }
}

/** The data part `data-<name>` of `message`. */
export function dataOf(message: UIMessage, name: string): unknown {
  const part = message.parts.find((each) => each.type === `data-${name}`);
  return part && 'data' in part ? part.data : undefined;
}
