/**
 * The bridge behind the real Telegram adapter: updates carrying the webhook secret token go to
 * `chat.webhooks.telegram`, and the Bot API is a local server on 127.0.0.1 that the adapter
 * reaches through its `apiUrl` option.
 */
import { createMemoryState } from '@chat-adapter/state-memory';
import { createTelegramAdapter } from '@chat-adapter/telegram';
import { Chat } from 'chat';
import { describe, expect, it } from 'vitest';
import type { ChatBridge, ChatBridgeOptions } from '../../src/chat/index.js';
import { startFakeTelegram, TELEGRAM_BOT, telegramRequest, until } from './platform.js';
import { silent, telegramPosts, useChatWorld } from './world.js';

const SECRET_TOKEN = 'telegram-webhook-secret';

const { world, api, bridged } = useChatWorld(startFakeTelegram);

type TelegramChat = Chat<{ telegram: ReturnType<typeof createTelegramAdapter> }>;

interface Bot {
  readonly chat: TelegramChat;
  readonly bridge: ChatBridge;
  readonly errors: unknown[];
  /** Posts an update with `secretToken` (null: none) and waits for everything it started. */
  deliver(body: string, secretToken?: string | null): Promise<Response>;
  /** Posts an update and returns as soon as Telegram would get its 200. */
  post(body: string): Promise<Response>;
  settle(): Promise<void>;
}

function createBot(options: Partial<ChatBridgeOptions> = {}): Bot {
  const telegram = createTelegramAdapter({
    botToken: TELEGRAM_BOT.token,
    secretToken: SECRET_TOKEN,
    apiUrl: api.url,
    mode: 'webhook',
    // Telegram's flood-control pacing (1.1 s between edits in private chats) is not under test.
    streamingEditIntervalMs: 20,
    logger: silent,
  });
  const chat: TelegramChat = new Chat({
    userName: TELEGRAM_BOT.username,
    adapters: { telegram },
    state: createMemoryState(),
    concurrency: 'concurrent',
    streamingUpdateIntervalMs: 20,
    logger: 'silent',
  });
  const { bridge, errors, waitUntil, settle } = bridged(chat, {
    agent: 'echo',
    tenant: 'acme',
    keyBy: 'chat',
    ...options,
  });
  const bot: Bot = {
    chat,
    bridge,
    errors,
    post: (body) => chat.webhooks.telegram(telegramRequest(body, SECRET_TOKEN), { waitUntil }),
    deliver: async (body, secretToken = SECRET_TOKEN) => {
      const request = telegramRequest(body, secretToken ?? undefined);
      const response = await chat.webhooks.telegram(request, { waitUntil });
      await settle();
      return response;
    },
    settle,
  };
  return bot;
}

let updateId = 10_000;
let messageId = 100;

interface UpdateOptions {
  /** The private chat of this user (Telegram: chat id = user id). */
  readonly user?: number;
  readonly updateId?: number;
}

/** A private-chat message update. */
function update(text: string, options: UpdateOptions = {}): string {
  updateId += 1;
  messageId += 1;
  const user = options.user ?? 42;
  return JSON.stringify({
    update_id: options.updateId ?? updateId,
    message: {
      message_id: messageId,
      from: { id: user, is_bot: false, first_name: `User ${user}`, username: `user${user}` },
      chat: { id: user, type: 'private', first_name: `User ${user}` },
      date: Math.floor(Date.now() / 1000),
      text,
    },
  });
}

describe('chat bridge on Telegram', () => {
  it('gives two chats two sessions and answers each in its own chat, streamed by post and edit', async () => {
    const bot = createBot();
    expect((await bot.deliver(update('hello', { user: 42 }))).status).toBe(200);
    expect((await bot.deliver(update('hola', { user: 43 }))).status).toBe(200);

    const keys = world.supervisor.sessionKeys();
    expect(keys).toContain('acme:telegram:chat:42');
    expect(keys).toContain('acme:telegram:chat:43');
    expect(world.seen()).toEqual(['hello', 'hola']);
    expect(telegramPosts(api).map(({ channel, text }) => ({ channel, text }))).toEqual([
      { channel: '42', text: 'echo: hello' },
      { channel: '43', text: 'echo: hola' },
    ]);
    // Streamed: a first message, then edits carrying the reply.
    expect(api.callsOf('editMessageText').length).toBeGreaterThan(0);
    expect(bot.errors).toEqual([]);
  });

  it('posts one message per reply when streaming is off', async () => {
    const bot = createBot({ stream: false, keyBy: 'user' });
    await bot.deliver(update('plain', { user: 50 }));
    expect(world.supervisor.sessionKeys()).toContain('acme:telegram:user:50');
    expect(api.callsOf('editMessageText')).toHaveLength(0);
    const posts = telegramPosts(api);
    expect(posts).toHaveLength(1);
    expect(posts[0]?.channel).toBe('50');
    // The Bot API answer is MarkdownV2: "." and the like arrive escaped.
    expect(posts[0]?.text.replaceAll('\\', '')).toBe('echo: plain');
  });

  it('answers the messages of one chat in order, one turn at a time', async () => {
    const bot = createBot();
    world.mock.setLatency({ firstTokenMs: 150 });
    try {
      await bot.post(update('one', { user: 60 }));
      await world.mock.waitForRequests(1);
      // Both arrive while the first turn is still running.
      expect((await bot.post(update('two', { user: 60 }))).status).toBe(200);
      expect((await bot.post(update('three', { user: 60 }))).status).toBe(200);
      await until(
        () =>
          telegramPosts(api)
            .map((post) => post.text)
            .join('|') === 'echo: one|echo: two|echo: three',
      );
      await bot.settle();
      expect(world.seen()).toEqual(['one', 'two', 'three']);
      expect((await world.supervisor.peek('acme:telegram:chat:60')?.stats())?.turns).toBe(3);
      expect(bot.errors).toEqual([]);
    } finally {
      world.mock.setLatency({});
    }
  });

  it('interrupts the turn when the Chat SDK aborts it, and posts no failure', async () => {
    const bot = createBot();
    world.mock.setLatency({ firstTokenMs: 0, tokensPerSecond: 20 });
    const outcome = new Promise<string>((resolve) => {
      const onEnd = (event: { key: string; outcome: string }) => {
        if (event.key !== 'acme:telegram:chat:90') return;
        world.supervisor.off('turn:end', onEnd);
        resolve(event.outcome);
      };
      world.supervisor.on('turn:end', onEnd);
    });
    try {
      await bot.post(update(`stop me ${'and keep talking '.repeat(20)}`, { user: 90 }));
      // The reply is being streamed (its first message is out) when the stop comes.
      await until(() => api.callsOf('sendMessage').length > 0);
      await bot.chat.abortTurn('telegram:90');
      const aborted = await world.mock.waitForAbort();
      expect(aborted.path).toBe('/v1/chat/completions');
      expect(await outcome).toBe('AGENTCELL_INTERRUPTED');
      await bot.settle();
      expect(telegramPosts(api).some((post) => post.text.includes('⚠️'))).toBe(false);
      expect(bot.errors).toEqual([]);
    } finally {
      world.mock.setLatency({});
    }
    await bot.deliver(update('still there?', { user: 90 }));
    expect(telegramPosts(api).at(-1)?.text).toBe('echo: still there?');
  });

  it('rejects a wrong or missing secret token, and nothing reaches the agent', async () => {
    const bot = createBot();
    expect((await bot.deliver(update('forged'), 'not-the-secret')).status).toBe(401);
    expect((await bot.deliver(update('no token'), null)).status).toBe(401);
    expect(world.mock.requests).toHaveLength(0);
    expect(api.callsOf('sendMessage')).toHaveLength(0);
  });

  it('answers a redelivered update once', async () => {
    const bot = createBot();
    const once = update('only once', { user: 70 });
    expect((await bot.deliver(once)).status).toBe(200);
    expect((await bot.deliver(once)).status).toBe(200);
    // A new update id around the same message is still the same message: deduplicated.
    const sameMessage = JSON.parse(once) as { update_id: number };
    sameMessage.update_id += 1_000;
    expect((await bot.deliver(JSON.stringify(sameMessage))).status).toBe(200);
    expect(world.seen()).toEqual(['only once']);
    expect(telegramPosts(api).map((post) => post.text)).toEqual(['echo: only once']);
  });

  it('rejects a malformed body and ignores a malformed update', async () => {
    const bot = createBot();
    expect((await bot.deliver('{"update_id": 1, "message": ')).status).toBe(400);
    const noChat = JSON.stringify({ update_id: 77_001, message: { message_id: 1, text: 'hi' } });
    expect((await bot.deliver(noChat)).status).toBe(200);
    expect((await bot.deliver(JSON.stringify({ update_id: 77_002 }))).status).toBe(200);
    expect(world.mock.requests).toHaveLength(0);
    expect(api.callsOf('sendMessage')).toHaveLength(0);
  });

  it('posts a failed turn as a short, safe message', async () => {
    const bot = createBot();
    await bot.deliver(update('fail now', { user: 80 }));
    await bot.deliver(update('and now?', { user: 80 }));
    const texts = telegramPosts(api).map((post) => post.text);
    expect(texts).toHaveLength(2);
    expect(texts[0]).toMatch(/^⚠️ AGENTCELL_LLM_REQUEST_FAILED: /);
    expect(texts[0]).not.toContain('acme:telegram');
    expect(texts[1]).toBe('echo: and now?');
    expect(bot.errors).toHaveLength(1);
  });
});

describe('approvals on Telegram', () => {
  it('asks with the reply command in the card text; `approve <id>` answers it', async () => {
    const bot = createBot({ agent: 'payer', stream: false });
    const paidBefore = world.paid.length;
    await bot.post(update('pay 5 for stamps', { user: 44 }));
    let approvalId: string | undefined;
    await until(() => {
      const sent = api.callsOf('sendMessage').map((call) => JSON.stringify(call.body));
      approvalId = sent.map((body) => /approve ([0-9a-f-]{36})/.exec(body)?.[1]).find(Boolean);
      return approvalId !== undefined;
    });
    expect(world.paid).toHaveLength(paidBefore);

    await bot.post(update(`approve ${approvalId}`, { user: 44 }));
    await until(() => telegramPosts(api).some((post) => post.text === 'paid it'));
    await bot.settle();

    expect(world.paid).toHaveLength(paidBefore + 1);
    const texts = telegramPosts(api).map((post) => post.text);
    expect(texts.some((text) => text.startsWith('✅ Approved by'))).toBe(true);
    expect(texts.at(-1)).toBe('paid it');
    expect(bot.errors).toEqual([]);
  });
});
