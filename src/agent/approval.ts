/**
 * A turn that stops for a person: which of a model response's tool calls need approval, who
 * decided the others, and the plain-data state a paused turn is resumed from. Plain data only:
 * the state crosses threads by structured clone and is journaled, so a pause survives a restart.
 */
import { randomUUID } from 'node:crypto';
import type { CheckedToolCall } from '../llm/model.js';
import type { AgentSpec } from './config.js';
import type { ApprovalRequest, Approver } from './extensions.js';
import type { ChatMessage, Usage } from './messages.js';
import { redactArguments } from './redact.js';
import type { TurnEventBody } from './turn-events.js';

/** A person's (or the approver's) answer to one tool call. */
export interface ApprovalDecision {
  readonly approved: boolean;
  /** Told to the model with a denial. */
  readonly reason?: string | undefined;
}

/** One tool call waiting for a person. */
export interface AskedApproval {
  /** Unguessable, scoped to its session. */
  readonly approvalId: string;
  readonly callId: string;
  readonly tool: string;
  /** The arguments as the model sent them (a JSON string); redacted before anyone sees them. */
  readonly arguments: string;
}

/** Where a paused turn stands: enough to run the rest of it later, in any thread. */
export interface TurnCheckpoint {
  /** The message that started the turn. */
  readonly message: string;
  /** The turn's messages so far, ending with the assistant message whose calls wait. */
  readonly conversation: readonly ChatMessage[];
  /** What the turn spent so far. */
  readonly usage: Usage;
  readonly iteration: number;
  /** The next event number of the turn. */
  readonly seq: number;
  /** The calls of that last step, as the host checked them. */
  readonly calls: readonly CheckedToolCall[];
  /** Calls the approver decided already, by call id. */
  readonly decisions: Readonly<Record<string, ApprovalDecision>>;
}

/** What a turn returns when it stopped for a person. */
export interface TurnPause {
  readonly kind: 'paused';
  readonly turnId: string;
  readonly checkpoint: TurnCheckpoint;
  readonly approvals: readonly AskedApproval[];
}

/** The rest of a paused turn, with every call of its last step decided. */
export interface TurnResume {
  readonly kind: 'resume';
  readonly checkpoint: TurnCheckpoint;
}

/** One call waiting for a person, as journaled. */
export interface PendingApproval extends AskedApproval {
  /** When the turn paused (clock milliseconds). */
  readonly requestedAt: number;
  /** When it times out (clock milliseconds), under `approval.timeoutMs`. */
  readonly expiresAt?: number | undefined;
}

/**
 * What the journal records of a paused turn, each under a turn id of its own so that an
 * append is idempotent: the pause, each answer, the start of the rest of the turn, and an end
 * without a reply. The reply itself is an ordinary record under the turn's own id.
 */
export type ApprovalMark =
  | {
      readonly kind: 'pending';
      readonly turnId: string;
      readonly checkpoint: TurnCheckpoint;
      readonly approvals: readonly PendingApproval[];
      /** The idempotency keys of the messages the turn answers, journaled with its reply. */
      readonly idempotency?: readonly { key: string; fingerprint: string }[] | undefined;
    }
  | {
      readonly kind: 'answer';
      readonly turnId: string;
      readonly approvalId: string;
      readonly approved: boolean;
      readonly reason?: string | undefined;
      /** Denied because nobody answered in time. */
      readonly expired?: true | undefined;
    }
  | { readonly kind: 'resumed'; readonly turnId: string }
  | { readonly kind: 'closed'; readonly turnId: string; readonly code: string };

/** The journal turn id a mark is recorded under. */
export function markRecordId(mark: ApprovalMark): string {
  return mark.kind === 'answer'
    ? `${mark.turnId}:answer:${mark.approvalId}`
    : `${mark.turnId}:${mark.kind}`;
}

/** What a session thread is asked to run: a message, or the rest of a paused turn. */
export type TurnInput = string | TurnResume;

/** Whether the approval config covers tool `name`. */
export function needsApproval(spec: AgentSpec, name: string): boolean {
  const tools = spec.approval?.tools;
  return tools === 'all' || (tools?.includes(name) ?? false);
}

/**
 * Asks the approver about each call that needs approval. An approver that answers `undefined`
 * (or none at all) leaves the call to a person when the turn may pause, and denies it otherwise.
 */
export async function decideCalls(
  spec: AgentSpec,
  calls: readonly CheckedToolCall[],
  approver: Approver | undefined,
  request: Omit<ApprovalRequest, 'tool' | 'arguments'>,
  mayPause: boolean,
): Promise<{ decisions: Record<string, ApprovalDecision>; asked: AskedApproval[] }> {
  const decisions: Record<string, ApprovalDecision> = {};
  const asked: AskedApproval[] = [];
  for (const call of calls) {
    if (!needsApproval(spec, call.name)) continue;
    const answer = await approver?.({ ...request, tool: call.name, arguments: argsOf(call) });
    if (answer === true || answer === false) decisions[call.id] = { approved: answer };
    else if (mayPause) {
      asked.push({
        approvalId: randomUUID(),
        callId: call.id,
        tool: call.name,
        arguments: call.arguments,
      });
    } else decisions[call.id] = { approved: false };
  }
  return { decisions, asked };
}

function argsOf(call: CheckedToolCall): unknown {
  try {
    return JSON.parse(call.arguments || '{}');
  } catch {
    return call.arguments;
  }
}

/**
 * A `tool-start` event of a call under approval with the `approval.redact` paths of its
 * arguments hidden: whoever watches the turn sees the call as the person asked saw it.
 */
export function shownToolStart(spec: AgentSpec, body: TurnEventBody): TurnEventBody {
  const paths = spec.approval?.redact;
  if (body.type !== 'tool-start' || !paths?.length || !needsApproval(spec, body.name)) return body;
  return { ...body, arguments: JSON.stringify(redactArguments(body.arguments, paths)) };
}
