/**
 * Stand-ins for the platforms' HTTP APIs, served on 127.0.0.1: the adapters are pointed at them
 * with their documented base-URL options (Slack `apiUrl`, Telegram `apiUrl`), and every call is
 * recorded. Also: webhook requests signed the way each platform signs them.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One API call as the fake platform received it. */
export interface ApiCall {
  /** The API method, e.g. `chat.postMessage` or `sendMessage`. */
  readonly method: string;
  /** The parsed body: JSON, or form fields (Slack's Web API posts forms). */
  readonly body: Record<string, unknown>;
  /** What the fake answered. */
  readonly answer: unknown;
}

type Answer = { readonly status?: number; readonly body: unknown };
type Responder = (method: string, body: Record<string, unknown>) => Answer;

export interface FakePlatform {
  /** The base URL to give the adapter. */
  readonly url: string;
  readonly calls: ApiCall[];
  /** Calls of one method, in order. */
  callsOf(method: string): ApiCall[];
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.length === 0) return {};
  if ((req.headers['content-type'] ?? '').includes('application/json')) {
    return JSON.parse(text) as Record<string, unknown>;
  }
  return Object.fromEntries(new URLSearchParams(text));
}

async function startFake(methodOf: (path: string) => string, respond: Responder) {
  const calls: ApiCall[] = [];
  const server: Server = createServer((req, res) => {
    readBody(req).then(
      (body) => {
        const method = methodOf(req.url ?? '/');
        const answer = respond(method, body);
        calls.push({ method, body, answer: answer.body });
        res.writeHead(answer.status ?? 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer.body));
      },
      () => {
        res.writeHead(400).end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    calls,
    callsOf: (method: string) => calls.filter((call) => call.method === method),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const SLACK_BOT = { userId: 'UBOT', botId: 'BBOT', name: 'agentcell', team: 'T1' } as const;

/** The Slack Web API: `POST /api/<method>`, answered like Slack does. */
export async function startFakeSlack(): Promise<FakePlatform> {
  let clock = 1_800_000_000;
  const nextTs = () => `${clock++}.000100`;
  const fake = await startFake(
    (path) => path.replace(/^\/api\//, '').split('?')[0] ?? '',
    (method, body) => {
      switch (method) {
        case 'auth.test':
          return {
            body: {
              ok: true,
              user_id: SLACK_BOT.userId,
              bot_id: SLACK_BOT.botId,
              user: SLACK_BOT.name,
              team_id: SLACK_BOT.team,
            },
          };
        case 'users.info': {
          const id = String(body['user'] ?? '');
          const name = id === SLACK_BOT.userId ? SLACK_BOT.name : `user-${id}`;
          const profile = { display_name: name, real_name: name };
          return { body: { ok: true, user: { id, name, profile } } };
        }
        case 'chat.postMessage':
        case 'chat.startStream': {
          const ts = nextTs();
          return { body: { ok: true, channel: body['channel'], ts, message: { ts } } };
        }
        default:
          return { body: { ok: true, channel: body['channel'], ts: body['ts'] } };
      }
    },
  );
  return { url: `http://127.0.0.1:${fake.port}/api/`, ...fake };
}

export const TELEGRAM_BOT = {
  id: 999,
  username: 'agentcell_bot',
  token: '999:test-token',
} as const;

/** The Telegram Bot API: `POST /bot<token>/<method>`, answered like Telegram does. */
export async function startFakeTelegram(): Promise<FakePlatform> {
  let messageId = 5_000;
  const fake = await startFake(
    (path) => path.split('/').at(-1)?.split('?')[0] ?? '',
    (method, body) => {
      const chat = { id: Number(body['chat_id']), type: 'private' };
      const date = Math.floor(Date.now() / 1000);
      switch (method) {
        case 'getMe':
          return {
            body: {
              ok: true,
              result: {
                id: TELEGRAM_BOT.id,
                is_bot: true,
                first_name: 'agentcell',
                username: TELEGRAM_BOT.username,
              },
            },
          };
        case 'sendMessage':
          return {
            body: { ok: true, result: { message_id: messageId++, chat, date, text: body['text'] } },
          };
        case 'editMessageText':
          return {
            body: {
              ok: true,
              result: { message_id: body['message_id'], chat, date, text: body['text'] },
            },
          };
        case 'sendChatAction':
          return { body: { ok: true, result: true } };
        default:
          // Not offered by this stand-in (e.g. the rich-message methods of Bot API 10.1): the
          // adapter falls back to sendMessage, as it does with an older Bot API server.
          return {
            status: 404,
            body: { ok: false, error_code: 404, description: 'Not Found: method not found' },
          };
      }
    },
  );
  return { url: `http://127.0.0.1:${fake.port}`, ...fake };
}

/** A Slack Events API request signed with `secret` (HMAC-SHA256 of `v0:<timestamp>:<body>`). */
export function slackRequest(
  body: string,
  secret: string,
  options: { timestamp?: number; signature?: string; headers?: Record<string, string> } = {},
): Request {
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  const signature =
    options.signature ??
    `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  return new Request('http://127.0.0.1/webhooks/slack', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-slack-request-timestamp': timestamp,
      'x-slack-signature': signature,
      ...options.headers,
    },
    body,
  });
}

/** A Telegram webhook request carrying `secretToken` in `X-Telegram-Bot-Api-Secret-Token`. */
export function telegramRequest(body: string, secretToken: string | undefined): Request {
  return new Request('http://127.0.0.1/webhooks/telegram', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(secretToken === undefined ? {} : { 'x-telegram-bot-api-secret-token': secretToken }),
    },
    body,
  });
}

/** Waits until `check()` holds, polling (never a fixed sleep); fails after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('the condition did not hold in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
