/**
 * The bridge behind the real Slack adapter: Events API payloads signed locally with the
 * signing secret go to `chat.webhooks.slack`, and the Slack Web API is a local server on
 * 127.0.0.1 that the adapter reaches through its `apiUrl` option.
 */
import { createSlackAdapter } from '@chat-adapter/slack';
import { createMemoryState } from '@chat-adapter/state-memory';
import { Chat, type Message, type Thread } from 'chat';
import { describe, expect, it } from 'vitest';
import { bridgeChat, type ChatBridge, type ChatBridgeOptions } from '../../src/chat/index.js';
import { SLACK_BOT, slackRequest, startFakeSlack, until } from './platform.js';
import { silent, slackPosts, useChatWorld } from './world.js';

const SECRET = 'slack-signing-secret';

const { world, api, bridged } = useChatWorld(startFakeSlack);

type SlackChat = Chat<{ slack: ReturnType<typeof createSlackAdapter> }>;

interface Bot {
  readonly chat: SlackChat;
  readonly waitUntil: (task: Promise<unknown>) => void;
  readonly bridge: ChatBridge;
  readonly errors: unknown[];
  /** Posts a signed webhook and waits for everything it started (handlers and replies). */
  deliver(body: string, options?: Parameters<typeof slackRequest>[2]): Promise<Response>;
  /** Posts a signed webhook and returns as soon as Slack would get its 200. */
  post(body: string): Promise<Response>;
  settle(): Promise<void>;
}

function createBot(options: Partial<ChatBridgeOptions> = {}): Bot {
  const slack = createSlackAdapter({
    botToken: 'xoxb-test',
    signingSecret: SECRET,
    apiUrl: api.url,
    webClientOptions: { retryConfig: { retries: 0 } },
    logger: silent,
  });
  const chat = new Chat({
    userName: SLACK_BOT.name,
    adapters: { slack },
    state: createMemoryState(),
    concurrency: 'concurrent',
    logger: 'silent',
  });
  const { bridge, errors, waitUntil, settle } = bridged(chat, {
    agent: 'echo',
    tenant: 'acme',
    keyBy: 'thread',
    ...options,
  });
  const bot: Bot = {
    chat,
    waitUntil,
    bridge,
    errors,
    post: (body) => chat.webhooks.slack(slackRequest(body, SECRET), { waitUntil }),
    deliver: async (body, requestOptions) => {
      const response = await chat.webhooks.slack(slackRequest(body, SECRET, requestOptions), {
        waitUntil,
      });
      await settle();
      return response;
    },
    settle,
  };
  return bot;
}

let eventCounter = 0;
let tsCounter = 1_700_000_000;

/** A fresh message ts (Slack message ids are timestamps). */
function nextTs(): string {
  tsCounter += 1;
  return `${tsCounter}.000200`;
}

interface EventOptions {
  readonly type?: 'app_mention' | 'message';
  readonly user?: string;
  readonly channel?: string;
  readonly ts?: string;
  readonly threadTs?: string;
  readonly eventId?: string;
}

/** An Events API `event_callback` body. */
function slackEvent(text: string, options: EventOptions = {}): string {
  eventCounter += 1;
  const type = options.type ?? 'app_mention';
  return JSON.stringify({
    token: 'legacy-token',
    team_id: SLACK_BOT.team,
    api_app_id: 'A1',
    type: 'event_callback',
    event_id: options.eventId ?? `Ev${eventCounter}`,
    event_time: Math.floor(Date.now() / 1000),
    event: {
      type,
      user: options.user ?? 'U1',
      text: type === 'app_mention' ? `<@${SLACK_BOT.userId}> ${text}` : text,
      ts: options.ts ?? nextTs(),
      ...(options.threadTs ? { thread_ts: options.threadTs } : {}),
      channel: options.channel ?? 'C1',
      channel_type: 'channel',
      team: SLACK_BOT.team,
    },
  });
}

describe('chat bridge on Slack', () => {
  it('gives two threads two sessions and answers each in its own thread', async () => {
    const bot = createBot({ stream: false });
    const first = nextTs();
    const second = nextTs();
    expect((await bot.deliver(slackEvent('hello', { ts: first }))).status).toBe(200);
    expect((await bot.deliver(slackEvent('bonjour', { ts: second }))).status).toBe(200);

    const keys = world.supervisor.sessionKeys();
    expect(keys).toContain(`acme:slack:thread:C1:${first}`);
    expect(keys).toContain(`acme:slack:thread:C1:${second}`);
    expect(world.seen()).toEqual(['hello', 'bonjour']);
    const posts = slackPosts(api);
    expect(posts.map(({ channel, thread, text }) => ({ channel, thread, text }))).toEqual([
      { channel: 'C1', thread: first, text: 'echo: hello' },
      { channel: 'C1', thread: second, text: 'echo: bonjour' },
    ]);
    expect(bot.errors).toEqual([]);
  });

  it('streams a reply through Slack native streaming', async () => {
    const bot = createBot();
    const ts = nextTs();
    await bot.deliver(slackEvent('stream me', { ts, channel: 'C2' }));
    expect(api.callsOf('chat.startStream')).toHaveLength(1);
    expect(api.callsOf('chat.startStream')[0]?.body).toMatchObject({
      channel: 'C2',
      thread_ts: ts,
      recipient_user_id: 'U1',
      recipient_team_id: SLACK_BOT.team,
    });
    expect(api.callsOf('chat.postMessage')).toHaveLength(0);
    expect(slackPosts(api).map((post) => post.text)).toEqual(['echo: stream me']);
  });

  it('answers the messages of one thread in order, one turn at a time', async () => {
    const bot = createBot();
    world.mock.setLatency({ firstTokenMs: 150 });
    try {
      const root = nextTs();
      await bot.post(slackEvent('one', { ts: root, channel: 'C3' }));
      // Follow-ups arrive while the first turn is still running.
      await world.mock.waitForRequests(1);
      const followUp = (text: string) =>
        slackEvent(text, { type: 'message', channel: 'C3', threadTs: root });
      expect((await bot.post(followUp('two'))).status).toBe(200);
      expect((await bot.post(followUp('three'))).status).toBe(200);
      await until(() => slackPosts(api).length === 3 && bot.errors.length === 0);
      await bot.settle();

      expect(world.seen()).toEqual(['one', 'two', 'three']);
      expect(world.supervisor.sessionKeys()).toContain(`acme:slack:thread:C3:${root}`);
      const posts = slackPosts(api);
      expect(posts.map((post) => post.text)).toEqual(['echo: one', 'echo: two', 'echo: three']);
      expect(new Set(posts.map((post) => post.thread))).toEqual(new Set([root]));
      const stats = await world.supervisor.peek(`acme:slack:thread:C3:${root}`)?.stats();
      expect(stats?.turns).toBe(3);
    } finally {
      world.mock.setLatency({});
    }
  });

  it('keys by chat, by user and by tenant', async () => {
    const byChat = createBot({ keyBy: 'chat', stream: false });
    await byChat.deliver(slackEvent('a', { channel: 'C10' }));
    await byChat.deliver(slackEvent('b', { channel: 'C10', user: 'U2' }));
    const byUser = createBot({ keyBy: 'user', tenant: 'globex', agent: 'other', stream: false });
    await byUser.deliver(slackEvent('c', { channel: 'C11', user: 'U3' }));
    await byUser.deliver(slackEvent('d', { channel: 'C12', user: 'U3' }));
    await byUser.deliver(slackEvent('e', { channel: 'C12', user: 'U4' }));

    const keys = world.supervisor.sessionKeys();
    expect(keys).toContain('acme:slack:chat:C10');
    expect(keys).toContain('globex:slack:user:U3');
    expect(keys).toContain('globex:slack:user:U4');
    expect((await world.supervisor.peek('acme:slack:chat:C10')?.stats())?.turns).toBe(2);
    expect((await world.supervisor.peek('globex:slack:user:U3')?.stats())?.turns).toBe(2);
    expect(world.supervisor.peek('globex:slack:user:U3')?.agent).toBe('other');
    expect(slackPosts(api)).toHaveLength(5);
  });

  it('rejects a bad signature, and nothing reaches the agent', async () => {
    const bot = createBot();
    const forged = await bot.deliver(slackEvent('forged'), { signature: `v0=${'0'.repeat(64)}` });
    expect(forged.status).toBe(401);
    const otherSecret = slackRequest(slackEvent('wrong secret'), 'not-the-secret');
    expect((await bot.chat.webhooks.slack(otherSecret)).status).toBe(401);
    const unsigned = new Request('http://127.0.0.1/webhooks/slack', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: slackEvent('unsigned'),
    });
    expect((await bot.chat.webhooks.slack(unsigned)).status).toBe(401);
    await bot.settle();
    expect(world.mock.requests).toHaveLength(0);
    expect(api.callsOf('chat.postMessage')).toHaveLength(0);
  });

  it('rejects a replay with an old timestamp and answers a redelivered event once', async () => {
    const bot = createBot({ stream: false });
    const stale = Math.floor(Date.now() / 1000) - 10 * 60;
    expect((await bot.deliver(slackEvent('replayed'), { timestamp: stale })).status).toBe(401);
    expect(world.mock.requests).toHaveLength(0);

    const once = slackEvent('only once', { eventId: 'EvSame', ts: nextTs() });
    expect((await bot.deliver(once)).status).toBe(200);
    // Slack's own redelivery, freshly signed: same event id and message ts.
    const retry = await bot.deliver(once, { headers: { 'x-slack-retry-num': '1' } });
    expect(retry.status).toBe(200);
    // A resend without the retry header is still the same message ts: deduplicated.
    expect((await bot.deliver(once)).status).toBe(200);
    expect(world.seen()).toEqual(['only once']);
    expect(slackPosts(api).map((post) => post.text)).toEqual(['echo: only once']);
  });

  it('rejects a malformed body and ignores a malformed event', async () => {
    const bot = createBot();
    expect((await bot.deliver('{"type": "event_callback", "event": ')).status).toBe(400);
    const noChannel = JSON.stringify({
      type: 'event_callback',
      team_id: SLACK_BOT.team,
      event_id: 'EvBroken',
      event: { type: 'app_mention', user: 'U1', text: `<@${SLACK_BOT.userId}> hi` },
    });
    expect((await bot.deliver(noChannel)).status).toBe(200);
    expect((await bot.deliver(JSON.stringify({ type: 'event_callback' }))).status).toBe(200);
    expect(world.mock.requests).toHaveLength(0);
    expect(api.callsOf('chat.postMessage')).toHaveLength(0);
  });

  it('posts a failed turn as a short, safe message and keeps answering', async () => {
    const bot = createBot({
      agent: (_thread: Thread, message: Message) => {
        if (message.text.includes('secret')) throw new Error('db password is hunter2');
        return 'echo';
      },
    });
    const failing = nextTs();
    await bot.deliver(slackEvent('fail please', { ts: failing, channel: 'C20' }));
    await bot.deliver(slackEvent('what is the secret', { channel: 'C20' }));
    await bot.deliver(slackEvent('fine now', { channel: 'C20' }));

    const texts = slackPosts(api).map((post) => post.text);
    expect(texts).toHaveLength(3);
    expect(texts[0]).toMatch(/^⚠️ AGENTCELL_LLM_REQUEST_FAILED: /);
    expect(texts[0]).not.toContain('acme:slack');
    expect(texts[1]).toBe(
      '⚠️ Something went wrong while answering; please try again later. (AGENTCELL_INTERNAL)',
    );
    expect(texts.join('\n')).not.toContain('hunter2');
    expect(texts[2]).toBe('echo: fine now');
    expect(bot.errors).toHaveLength(2);
  });

  it('refuses a Chat SDK that locks threads instead of letting the mailbox order', () => {
    const chat = new Chat({
      userName: 'bot',
      adapters: {
        slack: createSlackAdapter({ botToken: 'x', signingSecret: 's', logger: silent }),
      },
      state: createMemoryState(),
      logger: 'silent',
    });
    expect(() =>
      bridgeChat(chat, world.supervisor, { agent: 'echo', tenant: 'acme', keyBy: 'thread' }),
    ).toThrow(expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }));
  });
});

/** A signed `block_actions` interactive payload: `user` clicked `actionId` on `card`. */
function slackClick(
  actionId: string,
  value: string,
  card: { channel: string; ts: string; threadTs: string },
  user = 'U1',
): Request {
  const payload = {
    type: 'block_actions',
    user: { id: user, username: `user-${user}`, name: `user-${user}`, team_id: SLACK_BOT.team },
    team: { id: SLACK_BOT.team },
    api_app_id: 'A1',
    trigger_id: 'trigger-1',
    channel: { id: card.channel },
    container: {
      type: 'message',
      message_ts: card.ts,
      channel_id: card.channel,
      thread_ts: card.threadTs,
    },
    message: { ts: card.ts, thread_ts: card.threadTs },
    actions: [{ type: 'button', action_id: actionId, block_id: 'b1', value }],
  };
  return slackRequest(`payload=${encodeURIComponent(JSON.stringify(payload))}`, SECRET, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
}

/** The approval card posted in `channel` (its ts, and the approval id its buttons carry). */
async function cardIn(channel: string): Promise<{ ts: string; approvalId: string }> {
  let found: { ts: string; approvalId: string } | undefined;
  await until(() => {
    for (const call of api.callsOf('chat.postMessage')) {
      if (call.body['channel'] !== channel) continue;
      const id = /approve ([0-9a-f-]{36})/.exec(JSON.stringify(call.body))?.[1];
      const ts = (call.answer as { ts?: string }).ts;
      if (id && ts) found = { ts, approvalId: id };
    }
    return found !== undefined;
  });
  return found as { ts: string; approvalId: string };
}

describe('approvals in Slack', () => {
  it('posts Approve and Deny buttons; a click approves, and the reply follows in the thread', async () => {
    const bot = createBot({ agent: 'payer', stream: false });
    const root = nextTs();
    await bot.post(slackEvent('pay 5 to the printer shop', { ts: root, channel: 'CA' }));
    const card = await cardIn('CA');
    const raw = api.callsOf('chat.postMessage').at(-1)?.body['blocks'];
    const blocks = typeof raw === 'string' ? raw : JSON.stringify(raw);
    expect(blocks).toContain('"action_id":"ac:y"');
    expect(blocks).toContain('"action_id":"ac:n"');
    expect(world.paid).toEqual([]);

    const clicked = await bot.chat.webhooks.slack(
      slackClick('ac:y', card.approvalId, {
        channel: 'CA',
        ts: card.ts,
        threadTs: root,
      }),
      { waitUntil: bot.waitUntil },
    );
    expect(clicked.status).toBe(200);
    await until(() => slackPosts(api).some((post) => post.text === 'paid it'));
    await bot.settle();

    expect(world.paid).toEqual([5]);
    const texts = slackPosts(api)
      .filter((post) => post.thread === root)
      .map((post) => post.text);
    expect(texts).toContain('✅ Approved by user-U1');
    expect(texts.at(-1)).toBe('paid it');
    expect(bot.errors).toEqual([]);
  });

  it('takes a reply `deny <id> <reason>`; an id from another thread is not found there', async () => {
    const bot = createBot({ agent: 'payer', stream: false });
    const paidBefore = [...world.paid];
    const root = nextTs();
    await bot.post(slackEvent('pay 7 for lunch', { ts: root, channel: 'CB' }));
    const { approvalId } = await cardIn('CB');

    // Another thread is another session: the approval does not wait there.
    const elsewhere = nextTs();
    // (Not deliver(): that waits for every reply, the paused one's too.)
    await bot.post(slackEvent('hello', { ts: elsewhere, channel: 'CB' }));
    await until(() => slackPosts(api).some((post) => post.text === 'echo: hello'));
    await bot.post(
      slackEvent(`approve ${approvalId}`, { type: 'message', channel: 'CB', threadTs: elsewhere }),
    );
    await until(() => slackPosts(api).some((post) => post.text.includes('APPROVAL_NOT_FOUND')));

    await bot.post(
      slackEvent(`deny ${approvalId} not on a Friday`, {
        type: 'message',
        channel: 'CB',
        threadTs: root,
      }),
    );
    await until(() => slackPosts(api).some((post) => post.text === 'paid it'));
    await bot.settle();

    expect(world.paid).toEqual(paidBefore);
    const inThread = slackPosts(api)
      .filter((post) => post.thread === root)
      .map((post) => post.text);
    expect(inThread).toContain('🚫 Denied by user-U1: not on a Friday');
    expect(bot.errors).toEqual([expect.objectContaining({ code: 'AGENTCELL_APPROVAL_NOT_FOUND' })]);
  });
});
