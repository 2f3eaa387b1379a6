/**
 * `POST /v1/sessions/:key/approvals/:approvalId` `{ approved, reason? }`: a person answers a
 * tool call the session's paused turn waits on. The caller reached the session through its
 * own tenant's namespace, so another tenant's approval is not found from here.
 */
import { z } from 'zod';
import type { Session } from '../runtime/session.js';
import { parseBody } from './http.js';
import { decodeKey } from './routes.js';

const answerBodySchema = z.strictObject({
  approved: z.boolean(),
  reason: z.string().max(1000).optional(),
});

/** Answers the approval; resolves with what was recorded (the turn goes on by itself). */
export async function answerApproval(
  session: Session,
  rawId: string,
  body: unknown,
): Promise<{ approvalId: string; approved: boolean }> {
  const answer = parseBody(
    answerBodySchema,
    body,
    'an approval answer takes { approved: boolean, reason?: string }',
  );
  // Approval ids are UUIDs; decoded like a key so an encoded one is found too.
  const approvalId = decodeKey(rawId);
  await session.approve(approvalId, answer);
  return { approvalId, approved: answer.approved };
}
