/**
 * The chat box: a message to one of the tenant's sessions with its reply streamed in (the
 * gateway's SSE route), and a session's history when it is selected.
 */
import type { ChatMessage } from '../../agent/messages.js';
import type { TurnEventBody } from '../../agent/turn-events.js';
import type { TurnDone } from '../sse.js';
import { signOut } from './connection.js';
import { $, clear, el, ms } from './dom.js';
import { errorOf, type PageError, readEvents } from './events.js';
import { base, CHAT_KEY, headers, state } from './state.js';

type TurnFrame<T extends TurnEventBody['type']> = Extract<TurnEventBody, { type: T }>;

export function newKey(): string {
  return `web-${Math.random().toString(36).slice(2, 8)}`;
}

function knownSession(key: string) {
  return state.snapshot ? state.snapshot.sessions.find((row) => row.key === key) : undefined;
}

function bubble(role: string, text: string): HTMLDivElement {
  const node = el('div', `msg ${role}`);
  node.append(el('div', 'text', text));
  $('transcript').append(node);
  node.scrollIntoView({ block: 'end' });
  return node;
}

function note(node: HTMLElement, text: string): void {
  node.insertBefore(el('div', 'note', text), node.lastChild);
}

function fail(node: HTMLElement, error: PageError): void {
  node.classList.add('error');
  node.dataset['state'] = 'error';
  node.querySelector('.text')!.textContent = `${error.code}: ${error.message}`;
}

function sessionUrl(key: string, rest: string): string {
  return `${base}/v1/sessions/${encodeURIComponent(key)}${rest}`;
}

/**
 * A tool call waiting for a person: its (redacted) arguments and two buttons that answer it
 * through `POST /v1/sessions/:key/approvals/:id`; the stream goes on once it is answered.
 */
function askApproval(node: HTMLElement, key: string, ask: TurnFrame<'approval-required'>): void {
  const box = el('div', 'approval');
  box.dataset['approvalId'] = ask.approvalId;
  const args = JSON.stringify(ask.arguments) ?? '';
  box.append(el('div', 'ask', `approve ${ask.name}(${args.slice(0, 200)})?`));
  const answer = async (approved: boolean) => {
    for (const button of box.querySelectorAll('button')) button.disabled = true;
    const response = await fetch(
      sessionUrl(key, `/approvals/${encodeURIComponent(ask.approvalId)}`),
      {
        method: 'POST',
        body: JSON.stringify({ approved }),
        headers: headers({ 'content-type': 'application/json' }),
      },
    ).catch(() => undefined);
    const said = response?.ok
      ? approved
        ? 'approved'
        : 'denied'
      : response
        ? `${(await errorOf(response)).code}`
        : 'network error';
    box.dataset['answer'] = said;
    box.querySelector('.ask')!.textContent += ` ${said}`;
    for (const button of box.querySelectorAll('button')) button.remove();
  };
  for (const [label, approved] of [
    ['Approve', true],
    ['Deny', false],
  ] as const) {
    const button = el('button', approved ? 'approve' : 'deny', label);
    button.type = 'button';
    button.addEventListener('click', () => void answer(approved));
    box.append(button);
  }
  node.insertBefore(box, node.lastChild);
  node.dataset['state'] = 'approval';
}

async function loadHistory(key: string): Promise<void> {
  const transcript = $('transcript');
  clear(transcript);
  if (!key || !knownSession(key)) return;
  try {
    const response = await fetch(sessionUrl(key, '?history=1'), { headers: headers() });
    if (!response.ok) return;
    const body = (await response.json()) as { history?: readonly ChatMessage[] };
    if ($<HTMLInputElement>('chat-key').value.trim() !== key) return;
    for (const message of body.history || []) {
      if ((message.role === 'user' || message.role === 'assistant') && message.content) {
        bubble(message.role, message.content);
      }
    }
  } catch {
    // No history to show: the transcript stays empty.
  }
}

export function selectSession(key: string, agent?: string): void {
  $<HTMLInputElement>('chat-key').value = key;
  sessionStorage.setItem(CHAT_KEY, key);
  if (agent) $<HTMLSelectElement>('chat-agent').value = agent;
  for (const tr of $('sessions').children) {
    tr.classList.toggle('selected', (tr as HTMLElement).dataset['key'] === key);
  }
  void loadHistory(key);
}

export async function send(message: string): Promise<void> {
  const key = $<HTMLInputElement>('chat-key').value.trim();
  if (!key || !message || state.sending) return;
  state.sending = true;
  const sendButton = $<HTMLButtonElement>('chat-send');
  sendButton.disabled = true;
  sessionStorage.setItem(CHAT_KEY, key);
  bubble('user', message);
  const reply = bubble('assistant', '');
  reply.classList.add('streaming');
  reply.dataset['state'] = 'streaming';
  const text = reply.querySelector('.text')!;
  const body: { message: string; agent?: string } = { message };
  const agentSelect = $<HTMLSelectElement>('chat-agent');
  const known = knownSession(key);
  if (known) agentSelect.value = known.agent;
  else if (agentSelect.value) body.agent = agentSelect.value;
  const started = performance.now();
  let deltas = 0;
  try {
    const response = await fetch(sessionUrl(key, '/messages'), {
      method: 'POST',
      body: JSON.stringify(body),
      headers: headers({ 'content-type': 'application/json', accept: 'text/event-stream' }),
    });
    if (response.status === 401) {
      signOut('That token is no longer valid.');
      return;
    }
    const type = response.headers.get('content-type') || '';
    if (!response.ok || !type.startsWith('text/event-stream')) {
      fail(reply, await errorOf(response));
      return;
    }
    await readEvents(response, (event, data) => {
      if (event === 'text') {
        deltas++;
        text.textContent += (data as TurnFrame<'text'>).delta;
        reply.dataset['deltas'] = String(deltas);
        reply.scrollIntoView({ block: 'end' });
      } else if (event === 'tool-start') {
        const call = data as TurnFrame<'tool-start'>;
        note(reply, `tool ${call.name}(${String(call.arguments).slice(0, 120)})`);
      } else if (event === 'tool-end') {
        const call = data as TurnFrame<'tool-end'>;
        note(reply, `tool ${call.name}${call.ok ? ' done' : ' failed'}`);
      } else if (event === 'approval-required') {
        askApproval(reply, key, data as TurnFrame<'approval-required'>);
      } else if (event === 'retry') {
        const retry = data as TurnFrame<'retry'>;
        note(reply, `retry ${retry.attempt} after ${retry.code}`);
      } else if (event === 'done') {
        const done = data as TurnDone;
        text.textContent = done.reply;
        const usage = done.usage ? `, ${done.usage.totalTokens} tokens` : '';
        const took = ms(performance.now() - started);
        reply.append(el('div', 'meta', `${took}${usage} · ${deltas} chunks`));
        reply.dataset['state'] = 'done';
      } else if (event === 'error') {
        const error = data as PageError;
        fail(reply, { code: String(error.code), message: String(error.message) });
      }
    });
    if (reply.dataset['state'] === 'streaming' || reply.dataset['state'] === 'approval') {
      fail(reply, { code: 'disconnected', message: 'the stream ended before the reply' });
    }
  } catch (error) {
    fail(reply, { code: 'network', message: String((error as Error | undefined)?.message) });
  } finally {
    reply.classList.remove('streaming');
    state.sending = false;
    sendButton.disabled = false;
  }
}
