/**
 * The world of a chat test file: the mock LLM, a Supervisor with the agents, the fake platform,
 * bots bridged to the supervisor (shut down after each test), and readers that turn what an
 * adapter sent to the fake platform back into the replies a user would see.
 */
import type { Chat } from 'chat';
import { afterEach } from 'vitest';
import { bridgeChat, type ChatBridge, type ChatBridgeOptions } from '../../src/chat/index.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import type { MockLlm } from '../../src/testing/mock-llm.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { agentFor, shutdown, useFixture, useMockLlm, userTexts } from '../support/harness.js';
import type { ApiCall, FakePlatform } from './platform.js';

export interface ChatWorld {
  readonly mock: MockLlm;
  readonly supervisor: Supervisor;
  /** The user messages the model saw, in the order it saw them. */
  seen(): string[];
  /** The amounts the `pay` tool of agent `payer` was run with. */
  readonly paid: number[];
}

/** What every bot of a test has, whatever its platform. */
export interface Bridged {
  readonly bridge: ChatBridge;
  /** What the bridge reported through onError. */
  readonly errors: unknown[];
  /** Give as the webhook's `waitUntil`: settle() waits for the tasks it was handed. */
  readonly waitUntil: (task: Promise<unknown>) => void;
  /** Waits for everything the webhooks started (handlers and replies). */
  settle(): Promise<void>;
}

export interface ChatSuite {
  readonly world: ChatWorld;
  readonly api: FakePlatform;
  /** Bridges `chat` to the world's supervisor; the chat is shut down after the test. */
  bridged(chat: Chat, options: ChatBridgeOptions): Bridged;
}

/**
 * The chat world of the enclosing suite and the fake platform `startPlatform` serves; after
 * each test its bots are shut down and the platform's calls forgotten. Agents: `echo`
 * (replies `echo: <message>`; messages starting with "fail" get a 500 from the model, with no
 * retries), `other` (the same model, another name) and `payer`, whose `pay` tool needs
 * approval (messages starting "pay <n>" call it).
 */
export function useChatWorld(startPlatform: () => Promise<FakePlatform>): ChatSuite {
  const mock = useMockLlm({
    rules: [
      { match: /^fail/, steps: [{ fault: { kind: '500' } }] },
      {
        match: /^pay \d+/,
        steps: [{ toolCalls: [{ name: 'pay', arguments: { amount: 5 } }] }, { reply: 'paid it' }],
      },
    ],
  });
  const paid: number[] = [];
  const pay = defineTool({
    name: 'pay',
    description: 'Pays an amount',
    parameters: { type: 'object', properties: { amount: { type: 'number' } } },
    host: true,
    run: (args) => {
      paid.push((args as { amount: number }).amount);
      return 'paid';
    },
  });
  const world = useFixture(
    (): ChatWorld => {
      const supervisor = new Supervisor({ warmPoolSize: 0 });
      const agent = (name: string) =>
        agentFor(mock, { name, apiKey: 'k', execution: { maxRetries: 0 } });
      supervisor.register('echo', agent('echo'));
      supervisor.register('other', agent('other'));
      supervisor.register(
        'payer',
        agentFor(mock, { name: 'payer', apiKey: 'k', tools: [pay], approval: { tools: ['pay'] } }),
      );
      return { mock, supervisor, seen: () => userTexts(mock), paid };
    },
    ({ supervisor }) => shutdown(supervisor),
    'the chat world',
  );
  const api = useFixture(startPlatform, (platform) => platform.close(), 'the fake platform');
  const chats: Chat[] = [];
  afterEach(async () => {
    for (const chat of chats.splice(0)) await chat.shutdown();
    api.calls.splice(0);
  });
  return {
    world,
    api,
    bridged: (chat, options) => {
      chats.push(chat);
      const errors: unknown[] = [];
      const bridge = bridgeChat(chat, world.supervisor, {
        onError: (error) => errors.push(error),
        ...options,
      });
      const tasks: Promise<unknown>[] = [];
      return {
        bridge,
        errors,
        waitUntil: (task) => {
          tasks.push(task);
        },
        settle: async () => {
          while (tasks.length > 0) await Promise.allSettled(tasks.splice(0));
          await bridge.idle();
        },
      };
    },
  };
}

/** A logger for the adapters that says nothing. */
export const silent = {
  child: () => silent,
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

/** A message as the user sees it in the end (after every edit or stream append). */
export interface Posted {
  /** Slack: the message ts; Telegram: the message id. */
  readonly id: string;
  /** Slack: the channel; Telegram: the chat id. */
  readonly channel: string;
  /** Slack: the thread it was posted in. */
  readonly thread: string | undefined;
  text: string;
}

function answerOk(call: ApiCall): boolean {
  return typeof call.answer === 'object' && call.answer !== null && Reflect.get(call.answer, 'ok');
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : value === undefined ? '' : String(value);
}

/** Text of Slack stream chunks (`chunks` arrives as a JSON form field). */
function chunkText(body: Record<string, unknown>): string {
  let text = str(body['markdown_text']);
  const chunks = body['chunks'];
  if (typeof chunks === 'string') {
    for (const chunk of JSON.parse(chunks) as { type: string; text?: string }[]) {
      if (chunk.type === 'markdown_text') text += chunk.text ?? '';
    }
  }
  return text;
}

/** The messages the bot posted to Slack, in posting order, after edits and stream appends. */
export function slackPosts(api: FakePlatform): Posted[] {
  const posts = new Map<string, Posted>();
  for (const call of api.calls) {
    if (!answerOk(call)) continue;
    const body = call.body;
    const answerTs = str(Reflect.get(call.answer as object, 'ts'));
    switch (call.method) {
      case 'chat.postMessage':
        posts.set(answerTs, {
          id: answerTs,
          channel: str(body['channel']),
          thread: body['thread_ts'] === undefined ? undefined : str(body['thread_ts']),
          text: str(body['markdown_text'] ?? body['text']),
        });
        break;
      case 'chat.startStream':
        posts.set(answerTs, {
          id: answerTs,
          channel: str(body['channel']),
          thread: str(body['thread_ts']),
          text: chunkText(body),
        });
        break;
      case 'chat.appendStream':
      case 'chat.stopStream': {
        const post = posts.get(str(body['ts']));
        if (post) post.text += chunkText(body);
        break;
      }
      case 'chat.update': {
        const post = posts.get(str(body['ts']));
        if (post) post.text = str(body['markdown_text'] ?? body['text']);
        break;
      }
    }
  }
  return [...posts.values()];
}

/** The messages the bot posted to Telegram, in posting order, after edits. */
export function telegramPosts(api: FakePlatform): Posted[] {
  const posts = new Map<string, Posted>();
  const textOf = (body: Record<string, unknown>) => {
    const rich = body['rich_message'];
    const markdown = typeof rich === 'object' && rich !== null ? Reflect.get(rich, 'markdown') : '';
    return str(body['text'] ?? markdown);
  };
  for (const call of api.calls) {
    if (!answerOk(call)) continue;
    const result: unknown = Reflect.get(call.answer as object, 'result');
    if (call.method === 'sendMessage' && typeof result === 'object' && result !== null) {
      const id = str(Reflect.get(result, 'message_id'));
      posts.set(id, {
        id,
        channel: str(call.body['chat_id']),
        thread: undefined,
        text: textOf(call.body),
      });
    } else if (call.method === 'editMessageText') {
      const post = posts.get(str(call.body['message_id']));
      if (post) post.text = textOf(call.body);
    }
  }
  return [...posts.values()];
}
