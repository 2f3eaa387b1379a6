/**
 * The bridge from the Chat SDK (npm `chat`) to a Supervisor: every message the SDK hands over
 * goes to the session its key names, and the reply is posted back to the thread, streamed where
 * the adapter streams.
 *
 * The Chat SDK owns the platform side (webhooks, signature checks, dedupe, posting); agentcell
 * owns the conversation side. Ordering belongs to the session's mailbox, so the Chat SDK must
 * run with `concurrency: 'concurrent'`: with its lock-based strategies a second message in a
 * thread is dropped, collapsed or held behind a lock whose lease can run out in the middle of
 * a long turn. Under `concurrent` every message is submitted to its session the moment the SDK
 * dispatches it, and the mailbox answers them one by one, in that order.
 */
import type { Adapter, CardElement, Chat, Message, SentMessage, Thread } from 'chat';
import type { TurnEvent } from '../agent/turn-events.js';
import { ApprovalNotFoundError, isAgentcellError } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { Session } from '../runtime/session.js';
import type { Supervisor } from '../runtime/supervisor.js';
import {
  APPROVE_ACTION,
  type ApprovalCommand,
  type ApprovalEvent,
  answeredText,
  approvalCard,
  approvalCommand,
  approvalText,
  askInChat,
  DENY_ACTION,
} from './approvals.js';
import { assertConcurrent, escapeRegExp, validate } from './bridge-checks.js';
import { type ChatTurnFailure, defaultFailureText, toChatFailure } from './failure.js';
import { type ChatKeyBy, chatSessionKey } from './session-key.js';

type DefaultState = Record<string, unknown>;

/** The part of a Chat SDK `Chat` the bridge uses. */
export type BridgeableChat<TState = DefaultState> = Pick<
  Chat<Record<string, Adapter>, TState>,
  'onNewMention' | 'onSubscribedMessage' | 'onAction' | 'getUserName'
>;

/** Where a failure happened, for {@link ChatBridgeOptions.onError}. */
export interface ChatBridgeErrorContext {
  /** The Chat SDK thread id. */
  readonly threadId: string;
  /** The session key, when one was computed. */
  readonly key: string | undefined;
  /**
   * `turn`: the turn failed (its safe text was posted); `post`: posting to the platform failed;
   * `subscribe`: subscribing the thread failed; `approval`: an answer was refused.
   */
  readonly stage: 'turn' | 'post' | 'subscribe' | 'approval';
}

export interface ChatBridgeOptions<TState = DefaultState> {
  /** The registered agent a new session runs, or a function choosing it per message. */
  readonly agent: string | ((thread: Thread<TState>, message: Message) => string);
  /** Namespaces every session key (`<tenant>:<platform>:<keyBy>:<ids>`); 1 to 64 characters. */
  readonly tenant: string;
  /** One session per user, per chat (channel or DM) or per thread. */
  readonly keyBy: ChatKeyBy;
  /**
   * Stream replies where the adapter streams (Slack natively, Telegram by post and edit).
   * Adapters without a stream method always get one post with the whole reply. Default true.
   */
  readonly stream?: boolean;
  /**
   * Subscribe to a thread on its first mention, so follow-ups in it reach the session without
   * another mention. Default true.
   */
  readonly subscribe?: boolean;
  /** Remove a leading `@botname` from the text the agent gets. Default true. */
  readonly stripMention?: boolean;
  /** The text posted for a failed turn. Default: `⚠️ CODE: message` for public errors. */
  readonly failureText?: (failure: ChatTurnFailure) => string;
  /** Told about every failure; the handler itself never throws. Default: the Chat SDK logger. */
  readonly onError?: (error: unknown, context: ChatBridgeErrorContext) => void;
}

/** What {@link bridgeChat} returns. */
export interface ChatBridge<TState = DefaultState> {
  /** The session key a message in `thread` maps to. */
  keyFor(thread: Thread<TState>, message: Message): string;
  /** Resolves once every reply accepted so far has been posted (or has failed). */
  idle(): Promise<void>;
}

/** A turn in flight: submitted the moment its message arrived, posted when its turn comes. */
type Turn =
  | { readonly kind: 'failed'; readonly error: unknown }
  | {
      readonly kind: 'started';
      /** Stream the reply as it is written, or post it when it is done. */
      readonly streamed: boolean;
      readonly session: Session;
      readonly events: AsyncIterator<TurnEvent>;
      readonly first: Promise<Next>;
    };

type StartedTurn = Extract<Turn, { kind: 'started' }>;
type Next = Settled<IteratorResult<TurnEvent>>;

type Settled<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; error: unknown };

function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

/**
 * Routes the Chat SDK's messages to sessions of `supervisor` and posts the replies.
 * Registers `onNewMention` (which also subscribes the thread) and `onSubscribedMessage`.
 *
 * @example
 * const chat = new Chat({ userName: 'support', adapters: { slack }, state, concurrency: 'concurrent' });
 * bridgeChat(chat, supervisor, { agent: 'support', tenant: 'acme', keyBy: 'thread' });
 */
export function bridgeChat<TState = DefaultState>(
  chat: BridgeableChat<TState>,
  supervisor: Supervisor,
  options: ChatBridgeOptions<TState>,
): ChatBridge<TState> {
  validate(options);
  assertConcurrent(chat);
  const stream = options.stream ?? true;
  const subscribe = options.subscribe ?? true;
  const stripMention = options.stripMention ?? true;
  const failureText = options.failureText ?? defaultFailureText;
  const logFailure = (error: unknown, context: ChatBridgeErrorContext) => {
    // A failed turn is in the runtime's lifecycle log already, with its turn id.
    if (context.stage === 'turn') return;
    log('chat').warn(
      { ...errorFields(error), sessionKey: context.key, threadId: context.threadId },
      `the chat bridge's ${context.stage} failed`,
    );
  };
  const report = (error: unknown, context: ChatBridgeErrorContext) => {
    try {
      (options.onError ?? logFailure)(error, context);
    } catch {
      // A throwing onError must not take the handler down with it.
    }
  };
  /** The last delivery per session key: replies are posted in the order of their turns. */
  const tails = new Map<string, Promise<void>>();
  const pending = new Set<Promise<void>>();

  const keyFor = (thread: Thread<TState>, message: Message): string =>
    chatSessionKey({
      tenant: options.tenant,
      platform: thread.adapter.name,
      keyBy: options.keyBy,
      threadId: thread.id,
      channelId: thread.channelId,
      userId: message.author.userId,
    });

  const textOf = (thread: Thread<TState>, message: Message): string => {
    const text = message.text.trim();
    if (!stripMention) return text;
    const names = new Set([chat.getUserName(), thread.adapter.userName].filter(Boolean));
    for (const name of names) {
      const mention = new RegExp(`^@${escapeRegExp(name)}(?![\\w-])[\\s,:]*`, 'i');
      if (mention.test(text)) return text.replace(mention, '').trim();
    }
    return text;
  };

  /** Submits the message to its session now (synchronously), so arrival order is kept. */
  const start = (thread: Thread<TState>, message: Message, key: string, text: string): Turn => {
    try {
      const agent =
        typeof options.agent === 'string' ? options.agent : options.agent(thread, message);
      const session = supervisor.session(key, { agent });
      // The first next() submits the message (the event stream is lazy).
      const events = askInChat(session.stream(text), (event) => askFor(thread, event, key))[
        Symbol.asyncIterator
      ]();
      const streamed = stream && typeof thread.adapter.stream === 'function';
      return { kind: 'started', streamed, session, events, first: settle(events.next()) };
    } catch (error) {
      return { kind: 'failed', error };
    }
  };

  const postFailure = async (
    thread: Thread<TState>,
    error: unknown,
    key: string | undefined,
    stage: 'turn' | 'approval' = 'turn',
  ) => {
    // Stopped from the platform (e.g. Slack's stop button): the user asked for it, post nothing.
    if (thread.signal.aborted && isAgentcellError(error, 'AGENTCELL_INTERRUPTED')) return;
    report(error, { threadId: thread.id, key, stage });
    await postTo(thread, failureText(toChatFailure(error, key)), key);
  };

  const postTo = async (
    thread: Thread<TState>,
    message: string | CardElement | { markdown: string },
    key?: string,
  ) => {
    try {
      await thread.post(message);
    } catch (error) {
      report(error, { threadId: thread.id, key, stage: 'post' });
    }
  };

  /** Asks with buttons; a platform that refuses the card gets the request as text. */
  const askFor = async (thread: Thread<TState>, event: ApprovalEvent, key: string) => {
    try {
      await thread.post(approvalCard(event));
    } catch (error) {
      report(error, { threadId: thread.id, key, stage: 'post' });
      await postTo(thread, { markdown: approvalText(event) }, key);
    }
  };

  /** A person's answer, from a button or a reply: to the session the conversation maps to. */
  const answer = async (
    thread: Thread<TState>,
    key: string,
    command: ApprovalCommand,
    who: string,
  ) => {
    try {
      const session = await supervisor.find(key);
      if (!session) {
        throw new ApprovalNotFoundError(`no approval ${command.approvalId} waits here`);
      }
      await session.approve(command.approvalId, command);
      await postTo(thread, answeredText(command, who), key);
    } catch (error) {
      await postFailure(thread, error, key, 'approval');
    }
  };

  const postText = async (thread: Thread<TState>, text: string, key: string) => {
    if (text.trim().length > 0) await postTo(thread, { markdown: text }, key);
  };

  /** Reads events up to the first text delta or the final reply (or the end, or a failure). */
  const untilText = async (turn: StartedTurn, from: Next): Promise<Next> => {
    let next = from;
    while (next.ok && !next.value.done) {
      const { type } = next.value.value;
      if (type === 'text' || type === 'final') break;
      next = await settle(turn.events.next());
    }
    return next;
  };

  const postStreamed = async (
    thread: Thread<TState>,
    turn: StartedTurn,
    key: string,
    from: Next,
  ) => {
    // Post from the first text on, so a turn that fails early leaves no placeholder behind.
    const next = await untilText(turn, from);
    if (!next.ok) return postFailure(thread, next.error, key);
    if (next.value.done) return;
    const event = next.value.value;
    if (event.type === 'final') return postText(thread, event.reply, key);
    if (event.type !== 'text') return;
    let streamed = '';
    let finalReply: string | undefined;
    let failure: { error: unknown } | undefined;
    async function* deltas(first: string): AsyncGenerator<string> {
      streamed += first;
      yield first;
      try {
        while (true) {
          const result = await turn.events.next();
          if (result.done) return;
          const event = result.value;
          if (event.type === 'text') {
            streamed += event.delta;
            yield event.delta;
          } else if (event.type === 'final') {
            finalReply = event.reply;
          }
        }
      } catch (error) {
        failure = { error };
      }
    }
    let sent: SentMessage | undefined;
    try {
      sent = await thread.post(deltas(event.delta));
    } catch (error) {
      report(error, { threadId: thread.id, key, stage: 'post' });
    }
    if (failure) return postFailure(thread, failure.error, key);
    // A response template can make the final reply differ from the streamed text.
    if (sent && finalReply?.trim() && finalReply !== streamed) {
      try {
        await sent.edit({ markdown: finalReply });
      } catch (error) {
        report(error, { threadId: thread.id, key, stage: 'post' });
      }
    }
  };

  const postWhole = async (thread: Thread<TState>, turn: StartedTurn, key: string, from: Next) => {
    let next = from;
    while (next.ok && !next.value.done) {
      const event = next.value.value;
      if (event.type === 'final') return postText(thread, event.reply, key);
      next = await settle(turn.events.next());
    }
    if (!next.ok) return postFailure(thread, next.error, key);
  };

  const deliver = async (thread: Thread<TState>, turn: Turn, key: string | undefined) => {
    if (turn.kind === 'failed') return postFailure(thread, turn.error, key);
    if (key === undefined) return;
    // The first event (turn-start) names the turn: a stop on the platform interrupts that one.
    const first = await turn.first;
    if (!first.ok) return postFailure(thread, first.error, key);
    if (first.value.done) return;
    const { turnId } = first.value.value;
    const stop = () => void turn.session.interrupt('stopped in the chat', turnId);
    if (thread.signal.aborted) stop();
    else thread.signal.addEventListener('abort', stop, { once: true });
    try {
      if (turn.streamed) await postStreamed(thread, turn, key, first);
      else await postWhole(thread, turn, key, first);
    } finally {
      thread.signal.removeEventListener('abort', stop);
    }
  };

  const handle = async (thread: Thread<TState>, message: Message, isNew: boolean) => {
    let key: string | undefined;
    let turn: Turn;
    try {
      key = keyFor(thread, message);
      const text = textOf(thread, message);
      const command = approvalCommand(text);
      if (command) return await answer(thread, key, command, message.author.userName);
      if (text.length === 0) {
        // A bare mention: nothing to answer, but follow-ups in the thread are for the bot.
        if (isNew && subscribe) await thread.subscribe();
        return;
      }
      turn = start(thread, message, key, text);
    } catch (error) {
      turn = { kind: 'failed', error };
    }
    const chainKey = key ?? `thread:${thread.id}`;
    const previous = tails.get(chainKey) ?? Promise.resolve();
    const delivery = previous
      .then(() => deliver(thread, turn, key))
      .catch((error: unknown) => report(error, { threadId: thread.id, key, stage: 'post' }));
    tails.set(chainKey, delivery);
    pending.add(delivery);
    try {
      // After the turn is queued and its place in the reply order taken: no await before those.
      if (isNew && subscribe) {
        await thread.subscribe().catch((error: unknown) => {
          report(error, { threadId: thread.id, key, stage: 'subscribe' });
        });
      }
      await delivery;
    } finally {
      pending.delete(delivery);
      if (tails.get(chainKey) === delivery) tails.delete(chainKey);
    }
  };

  chat.onNewMention((thread, message) => handle(thread, message, true));
  chat.onSubscribedMessage((thread, message) => handle(thread, message, false));
  chat.onAction([APPROVE_ACTION, DENY_ACTION], async (event) => {
    const thread = event.thread as Thread<TState> | null;
    if (!thread || !event.value) return;
    const key = keyFor(thread, { author: event.user } as Message);
    const approved = event.actionId === APPROVE_ACTION;
    await answer(thread, key, { approvalId: event.value, approved }, event.user.userName);
  });

  return {
    keyFor,
    idle: async () => {
      while (pending.size > 0) await Promise.all(pending);
    },
  };
}
