/**
 * The world of a chat test file: the mock LLM, a Supervisor with the agents, and readers that
 * turn what an adapter sent to the fake platform back into the replies a user would see.
 */
import { Agent } from '../../src/agent/agent.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { lastUserText } from '../../src/testing/mock-llm-script.js';
import type { ApiCall, FakePlatform } from './platform.js';

export interface ChatWorld {
  readonly mock: MockLlm;
  readonly supervisor: Supervisor;
  /** The user messages the model saw, in the order it saw them. */
  seen(): string[];
  shutdown(): Promise<void>;
}

/**
 * Agents: `echo` (replies `echo: <message>`; messages starting with "fail" get a 500 from the
 * model, with no retries) and `other` (the same model, another name).
 */
export async function createChatWorld(): Promise<ChatWorld> {
  const mock = await startMockLlm({
    rules: [{ match: /^fail/, steps: [{ fault: { kind: '500' } }] }],
  });
  const supervisor = new Supervisor({ warmPoolSize: 0 });
  const agent = (name: string) =>
    new Agent({
      name,
      llm: 'mock-model',
      baseUrl: mock.url,
      apiKey: 'k',
      execution: { maxRetries: 0, retryBaseDelayMs: 1 },
    });
  supervisor.register('echo', agent('echo'));
  supervisor.register('other', agent('other'));
  return {
    mock,
    supervisor,
    seen: () =>
      mock.requests.flatMap((request) =>
        request.body ? [lastUserText(request.body.messages)] : [],
      ),
    shutdown: async () => {
      await supervisor.close();
      await mock.close();
    },
  };
}

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
