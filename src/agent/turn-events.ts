/** What a turn reports while it runs, and what it returns. All plain, structured-cloneable data. */
import type { ChatMessage, Usage } from './messages.js';

/** Tags every event: which session and turn it belongs to, and its order within the turn. */
export interface TurnEventTags {
  readonly sessionKey: string;
  readonly turnId: string;
  /** 0, 1, 2, … within one turn: lets a receiver drop duplicates and detect gaps. */
  readonly seq: number;
}

/** A failure in plain form, as carried by events. */
export interface EventError {
  readonly code: string;
  readonly message: string;
}

export type TurnEventBody =
  | { readonly type: 'turn-start'; readonly message: string }
  | { readonly type: 'text'; readonly delta: string }
  | {
      readonly type: 'tool-start';
      readonly callId: string;
      readonly name: string;
      readonly arguments: string;
      /** When the thread started the call (ms since the epoch): what its trace span starts at. */
      readonly at?: number | undefined;
    }
  | {
      readonly type: 'tool-end';
      readonly callId: string;
      readonly name: string;
      readonly ok: boolean;
      readonly result: string;
      readonly error?: EventError | undefined;
      /** When the call ended (ms since the epoch). */
      readonly at?: number | undefined;
    }
  | {
      /** The turn stopped until a person answers (journaled before anyone hears this). */
      readonly type: 'approval-required';
      readonly approvalId: string;
      readonly callId: string;
      readonly name: string;
      /** The call's arguments, with the paths of `approval.redact` hidden. */
      readonly arguments: unknown;
      /** When an unanswered approval times out (clock milliseconds), under `approval.timeoutMs`. */
      readonly expiresAt?: number | undefined;
      /** How many calls of this step wait for a person: one such event comes for each. */
      readonly approvals: number;
    }
  | { readonly type: 'usage'; readonly usage: Usage }
  | {
      readonly type: 'retry';
      readonly attempt: number;
      readonly code: string;
      readonly delayMs: number;
    }
  | {
      readonly type: 'final';
      readonly reply: string;
      readonly output?: unknown;
      readonly usage: Usage;
    };

export type TurnEvent = TurnEventTags & TurnEventBody;

/** What a completed turn appended: what a journal records. */
export interface TurnDelta {
  readonly turnId: string;
  readonly messages: readonly ChatMessage[];
  readonly usage: Usage;
}

export interface TurnResult {
  readonly turnId: string;
  /** The final reply text (after the response template, if any). */
  readonly reply: string;
  /** The parsed and validated reply when the agent has an output schema. */
  readonly output?: unknown;
  readonly delta: TurnDelta;
}
