/**
 * Every error agentcell raises, with its stable code, and the plain-data form errors take
 * across a thread boundary. The one import path for errors; the parts live in `errors/`: the
 * code table (hints, HTTP statuses), the classes, and the wire form.
 *
 * Match on `code`, never on `instanceof`: an `Error` subclass posted between threads arrives
 * as a bare `Error`, so errors cross in {@link ErrorWire} form and are mapped back to their
 * class by code ({@link fromWire}).
 */
export { type AgentcellErrorCode, errorCatalogue } from './errors/catalogue.js';
export * from './errors/classes.js';
export {
  type ErrorWire,
  fromWire,
  isErrorWire,
  toWire,
  withDetails,
} from './errors/wire.js';
