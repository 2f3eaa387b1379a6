/**
 * The world of the OpenAI-compatible route tests: agents `echo` (with a `lookup` host tool the
 * mock calls for messages starting "weather") and `other`; tenants `acme` (both agents) and
 * `globex` (echo only); `openai` SDK clients for each; and readers for what the mock got.
 */
import OpenAI, { APIError } from 'openai';
import { lastUserText } from '../../src/testing/mock-llm-script.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { forwardTo, messagesOf } from '../support/harness.js';
import { type ServedGateway, useGateway, useWorld, type World } from './setup.js';

export const ACME = 'acme-token-0123456789abcdef';
export const GLOBEX = 'globex-token-0123456789abcdef';
export const BODY_LIMIT = 4_096;

export type Message = OpenAI.Chat.ChatCompletionMessageParam;
export const user = (content: string): Message => ({ role: 'user', content });
export const assistant = (content: string): Message => ({ role: 'assistant', content });

export interface OpenAiWorld {
  readonly world: World;
  readonly served: Omit<ServedGateway, 'close'>;
  /** The arguments of every call of the lookup tool. */
  readonly lookups: unknown[];
  readonly acme: OpenAI;
  readonly globex: OpenAI;
  /** A client of `token`, on this gateway or the one at `base`. */
  sdk(token: string, base?: string): OpenAI;
  /** A plain completion on `echo` (by acme unless `client`): the reply's text and headers. */
  ask(
    messages: Message[],
    headers?: Record<string, string>,
    extra?: Record<string, unknown>,
    client?: OpenAI,
  ): Promise<{ text: string; headers: Headers }>;
  /** The user and assistant texts of the last model request whose last user text is `last`. */
  dialogueSeenFor(last: string): string[];
}

/** The world of the enclosing suite. */
export function useOpenAiWorld(): OpenAiWorld {
  const lookups: unknown[] = [];
  const lookup = defineTool({
    name: 'lookup',
    description: 'Looks the weather up',
    host: true,
    run: (args) => {
      lookups.push(args);
      return 'sunny, 21 °C';
    },
  });
  const world = useWorld(({ supervisor, agent, mock }) => {
    mock.setRules([
      {
        match: /^weather/,
        steps: [
          { toolCalls: [{ name: 'lookup', arguments: { city: 'Paris' } }] },
          { reply: 'Sunny in Paris.' },
        ],
      },
    ]);
    supervisor.register('echo', agent('echo', { tools: [lookup] }));
    supervisor.register('other', agent('other'), { warmPoolSize: 0 });
  });
  const served = useGateway(world, {
    tenants: { [ACME]: { id: 'acme' }, [GLOBEX]: { id: 'globex', agents: ['echo'] } },
    maxBodyBytes: BODY_LIMIT,
  });
  // No retries: a refused request must reach the test as the one answer it got.
  const sdk = (token: string, base = served.server.url) =>
    new OpenAI({ baseURL: `${base}/v1`, apiKey: token, maxRetries: 0 });
  const clients = new Map<string, OpenAI>();
  const clientOf = (token: string) => () => {
    const client = clients.get(token) ?? sdk(token);
    clients.set(token, client);
    return client;
  };
  const acme = forwardTo(clientOf(ACME));
  return {
    world,
    served,
    lookups,
    acme,
    globex: forwardTo(clientOf(GLOBEX)),
    sdk,
    ask: async (messages, headers = {}, extra = {}, client = acme) => {
      const { data, response } = await client.chat.completions
        .create({ model: 'echo', messages, ...extra }, { headers })
        .withResponse();
      return { text: data.choices[0]?.message.content ?? '', headers: response.headers };
    },
    dialogueSeenFor: (last) => {
      const index = world.mock.requests.findLastIndex(
        (request) => request.body !== undefined && lastUserText(request.body.messages) === last,
      );
      if (index < 0) throw new Error(`the mock got no request ending in ${JSON.stringify(last)}`);
      return messagesOf(world.mock, index)
        .filter((message) => message.role === 'user' || message.role === 'assistant')
        .map((message) => `${message.role}: ${String(message.content)}`);
    },
  };
}

/** The error the SDK raised for `promise`. */
export async function apiErrorOf(promise: Promise<unknown>): Promise<APIError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof APIError) return error;
    throw error;
  }
  throw new Error('expected the request to fail');
}
