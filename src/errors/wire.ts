/**
 * The plain-data form errors take across a thread boundary, where an `Error` subclass would
 * arrive as a bare `Error` without its class or code.
 */
import { type AgentcellErrorCode, CATALOGUE, isCode } from './catalogue.js';
import {
  type AgentcellError,
  type ErrorClass,
  type ErrorDetails,
  errorClasses,
  isAgentcellError,
} from './classes.js';

/** The plain-data form an error takes across a thread boundary. */
export interface ErrorWire {
  readonly agentcellError: 1;
  readonly code: AgentcellErrorCode;
  readonly name: string;
  readonly message: string;
  readonly details?: ErrorDetails | undefined;
  readonly stack?: string | undefined;
}

/**
 * Encodes any thrown value for the trip to another thread. Values that are not agentcell
 * errors become `AGENTCELL_INTERNAL`, keeping their message for the server log.
 */
export function toWire(error: unknown): ErrorWire {
  if (isAgentcellError(error)) {
    return {
      agentcellError: 1,
      code: error.code,
      name: error.name,
      message: error.message,
      details: plainDetails(error.details),
      stack: error.stack,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    agentcellError: 1,
    code: 'AGENTCELL_INTERNAL',
    name: CATALOGUE.AGENTCELL_INTERNAL.name,
    message: `${message}. ${CATALOGUE.AGENTCELL_INTERNAL.hint}`,
    stack: error instanceof Error ? error.stack : undefined,
  };
}

/** Whether a value has the shape of an {@link ErrorWire}. */
export function isErrorWire(value: unknown): value is ErrorWire {
  if (typeof value !== 'object' || value === null) return false;
  const wire = value as Partial<ErrorWire>;
  return wire.agentcellError === 1 && isCode(wire.code) && typeof wire.message === 'string';
}

/** Rebuilds the error of the right class from its wire form (the message is kept as sent). */
export function fromWire(wire: ErrorWire): AgentcellError {
  const ErrorOfCode: ErrorClass<AgentcellErrorCode> = errorClasses[wire.code];
  const error = new ErrorOfCode(undefined, { details: wire.details });
  error.message = wire.message;
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
}

/** A copy of `error` (same class, code and message) with `extra` merged into its details. */
export function withDetails<E extends AgentcellError>(error: E, extra: ErrorDetails): E {
  const wire = toWire(error);
  return fromWire({ ...wire, details: { ...wire.details, ...extra } }) as E;
}

/** Details must survive structured clone; anything that would not is dropped, not thrown. */
function plainDetails(details: ErrorDetails | undefined): ErrorDetails | undefined {
  if (details === undefined) return undefined;
  try {
    return structuredClone(details);
  } catch {
    return undefined;
  }
}
