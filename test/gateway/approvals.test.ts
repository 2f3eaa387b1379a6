/**
 * Approvals over the gateway: a message whose tool needs a person waits (JSON or SSE), the
 * session lists the approval on `GET /v1/sessions/:key` (arguments redacted), and
 * `POST /v1/sessions/:key/approvals/:approvalId` answers it; a second answer, another tenant,
 * an unknown id, a malformed body and an answer after the timeout each get a typed error.
 */
import { describe, expect, it } from 'vitest';
import { forwardTo } from '../support/harness.js';
import { type Answer, expectError, payTool, type SseFrame } from './helpers.js';
import { useGateway, useWorld } from './setup.js';

const ACME = 'acme-token-0123456789abcdef';
const GLOBEX = 'globex-token-0123456789abcdef';

const { pay, paid } = payTool();

function payRule(match: string, amount: number) {
  return {
    match,
    steps: [
      { toolCalls: [{ name: 'pay', arguments: { amount, card: '4242 4242' } }] },
      { reply: `done ${match}` },
    ],
  };
}

const world = useWorld(({ supervisor, agent, mock }) => {
  mock.setRules([
    payRule('json', 1),
    payRule('deny', 2),
    payRule('errors', 3),
    payRule('sse', 4),
    payRule('late', 5),
  ]);
  const approval = { tools: ['pay'], redact: ['card'] };
  supervisor.register('payer', agent('payer', { tools: [pay], approval }));
  supervisor.register(
    'hurried',
    agent('hurried', { tools: [pay], approval: { ...approval, timeoutMs: 50 } }),
  );
});
const served = useGateway(world, {
  tenants: { [ACME]: { id: 'acme' }, [GLOBEX]: { id: 'globex' } },
  defaultAgent: 'payer',
});
const client = forwardTo(() => served.client);

interface Pending {
  readonly approvalId: string;
  readonly tool: string;
  readonly arguments: unknown;
}

/** The session's pending approvals, as `GET /v1/sessions/:key` lists them, once there is one. */
async function pendingOf(key: string, token = ACME): Promise<Pending[]> {
  let approvals: Pending[] = [];
  await expect
    .poll(
      async () => {
        const answer = await client.request('GET', `/v1/sessions/${encodeURIComponent(key)}`, {
          token,
        });
        approvals = (answer.json as { approvals?: Pending[] } | undefined)?.approvals ?? [];
        return approvals.length;
      },
      { timeout: 10_000 },
    )
    .toBe(1);
  return approvals;
}

function answer(key: string, approvalId: string, body: unknown, token = ACME): Promise<Answer> {
  return client.request(
    'POST',
    `/v1/sessions/${encodeURIComponent(key)}/approvals/${encodeURIComponent(approvalId)}`,
    { token, body },
  );
}

/** Posts a message as an event stream and reads frames as they arrive. */
async function streamMessage(key: string, message: string) {
  const response = await fetch(
    `${served.server.url}/v1/sessions/${encodeURIComponent(key)}/messages`,
    {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ACME}`,
        'content-type': 'application/json',
        accept: 'text/event-stream',
      },
      body: JSON.stringify({ message }),
    },
  );
  const frames: SseFrame[] = [];
  let notify = () => {};
  const ended = (async () => {
    let buffer = '';
    const decoder = new TextDecoder();
    for await (const chunk of response.body ?? []) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const match = /^event: ([a-z-]+)\ndata: (.+)$/s.exec(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (match?.[1] && match[2]) frames.push({ event: match[1], data: JSON.parse(match[2]) });
      }
      notify();
    }
  })();
  const next = async (event: string): Promise<SseFrame> => {
    for (;;) {
      const found = frames.find((frame) => frame.event === event);
      if (found) return found;
      const more = new Promise<void>((resolve) => {
        notify = resolve;
      });
      await Promise.race([more, ended]);
      if (!frames.some((frame) => frame.event === event) && (await isDone(ended))) {
        throw new Error(`the stream ended without ${event}: ${JSON.stringify(frames)}`);
      }
    }
  };
  return { status: response.status, frames, next, ended };
}

async function isDone(promise: Promise<void>): Promise<boolean> {
  const marker = Symbol('pending');
  return (await Promise.race([promise.then(() => true), Promise.resolve(marker)])) !== marker;
}

describe('approvals over HTTP', () => {
  it('a JSON message waits for the answer; GET lists the approval redacted; POST approves', async () => {
    const reply = client.send(ACME, 'appr-json', { message: 'json please' });
    const [pending] = await pendingOf('appr-json');
    expect(pending).toMatchObject({ tool: 'pay', arguments: { amount: 1, card: '[redacted]' } });
    expect(paid).not.toContain(1);

    const answered = await answer('appr-json', pending?.approvalId ?? '', { approved: true });

    expect(answered.status).toBe(202);
    expect(answered.json).toEqual({ approvalId: pending?.approvalId, approved: true });
    expect((await reply).json).toMatchObject({ reply: 'done json' });
    expect(paid.filter((amount) => amount === 1)).toHaveLength(1);
  });

  it('a denial with a reason reaches the model; the tool never runs', async () => {
    const reply = client.send(ACME, 'appr-deny', { message: 'deny please' });
    const [pending] = await pendingOf('appr-deny');

    const answered = await answer('appr-deny', pending?.approvalId ?? '', {
      approved: false,
      reason: 'not this month',
    });

    expect(answered.status).toBe(202);
    expect((await reply).json).toMatchObject({ reply: 'done deny' });
    expect(paid).not.toContain(2);
  });

  it('answers a double answer, another tenant, an unknown id and a bad body with typed errors', async () => {
    const reply = client.send(ACME, 'appr-errors', { message: 'errors please' });
    const [pending] = await pendingOf('appr-errors');
    const id = pending?.approvalId ?? '';

    expectError(
      await answer('appr-errors', id, { approved: true }, GLOBEX),
      404,
      'AGENTCELL_NOT_FOUND',
    );
    expectError(
      await answer('appr-errors', 'no-such-approval', { approved: true }),
      404,
      'AGENTCELL_APPROVAL_NOT_FOUND',
    );
    expectError(
      await answer('appr-errors', id, { approved: 'yes' }),
      400,
      'AGENTCELL_MESSAGE_INVALID',
    );
    expect((await answer('appr-errors', id, { approved: true })).status).toBe(202);
    expectError(
      await answer('appr-errors', id, { approved: false }),
      409,
      'AGENTCELL_APPROVAL_ANSWERED',
    );
    expect((await reply).json).toMatchObject({ reply: 'done errors' });
  });

  it('an answer after approval.timeoutMs is AGENTCELL_APPROVAL_EXPIRED', async () => {
    const reply = await client.send(ACME, 'appr-late', {
      message: 'late please',
      agent: 'hurried',
    });
    // Nobody answered: the model was told the call was denied, and replied.
    expect(reply.json).toMatchObject({ reply: 'done late' });
    const records = await world.store.read('acme:appr-late');
    const mark = records.find((record) => record.approval?.kind === 'pending')?.approval;
    const id = mark?.kind === 'pending' ? mark.approvals[0]?.approvalId : undefined;
    expect(id).toBeDefined();

    expectError(
      await answer('appr-late', id ?? '', { approved: true }),
      410,
      'AGENTCELL_APPROVAL_EXPIRED',
    );
    expect(paid).not.toContain(5);
  });
});

describe('approvals over SSE', () => {
  it('streams approval-required, then the rest of the turn once approved', async () => {
    const stream = await streamMessage('appr-sse', 'sse please');
    expect(stream.status).toBe(200);

    const asked = await stream.next('approval-required');
    expect(asked.data).toMatchObject({
      sessionKey: 'appr-sse',
      name: 'pay',
      arguments: { amount: 4, card: '[redacted]' },
    });
    const { approvalId } = asked.data as { approvalId: string };
    expect((await answer('appr-sse', approvalId, { approved: true })).status).toBe(202);

    expect((await stream.next('done')).data).toMatchObject({ reply: 'done sse' });
    await stream.ended;
    const events = stream.frames.map((frame) => frame.event);
    expect(events.indexOf('tool-end')).toBeGreaterThan(events.indexOf('approval-required'));
    expect(paid.filter((amount) => amount === 4)).toHaveLength(1);
  });
});
