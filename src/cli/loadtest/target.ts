/**
 * What a load test drives: the embedded supervisor ({@link EmbeddedTarget}) or a running gateway
 * ({@link GatewayTarget}). Both answer one send with a {@link SendOutcome}; neither ever throws
 * from `send`.
 */

/** How one send ended, as the target saw it. */
export type SendOutcome =
  | { readonly kind: 'reply' }
  /** A typed error: `code` is an agentcell code (or the gateway's), `message` its text. */
  | { readonly kind: 'error'; readonly code: string; readonly message: string }
  /**
   * The message may have been accepted but got neither a reply nor a typed error: an untyped
   * failure, a stream cut short. It counts as lost.
   */
  | { readonly kind: 'broken'; readonly reason: string };

/** Callbacks of one send. */
export interface SendHooks {
  /** The first text delta of the reply arrived (time to first token). */
  readonly onText: () => void;
}

/** Worker figures of an embedded run (a gateway's are not visible from outside). */
export interface WorkerFigures {
  readonly placement: string;
  readonly starts: number;
  readonly warmStarts: number;
  readonly restarts: number;
  readonly crashes: number;
  readonly failedSessions: number;
  readonly passivations: number;
  readonly maxLiveSessions: number;
  readonly warmHits: number;
  readonly warmMisses: number;
  readonly toolCallsRun: number;
  /** MCP tool calls that answered (`--mcp-tool-calls`). */
  readonly mcpToolCallsRun: number;
}

/** A system under load. */
export interface LoadTarget {
  /** One line naming the target, for the report. */
  readonly description: string;
  send(key: string, message: string, hooks: SendHooks): Promise<SendOutcome>;
  /** Live session workers now, when the target can tell. */
  liveWorkers(): number | undefined;
  /** Worker figures so far, when the target can tell. */
  workers(): WorkerFigures | undefined;
  /** Stops everything it started; `abandon` means sends may still be pending (lost). */
  close(abandon: boolean): Promise<void>;
}
