/**
 * Every lifecycle event of a supervisor's sessions, logged once through the one logger, with
 * the session key (and the turn id where there is one): what an operator reads when a session
 * misbehaves. A crash at `warn`, a failed session at `error`, the ordinary life of a session at
 * `info`; so is a failed turn, whose typed error its caller already has.
 */
import type { EventEmitter } from 'node:events';
import { errorFields, log } from '../log.js';
import type { SupervisorEvents } from './events.js';

/** Logs the events of `supervisor` from now on. */
export function logLifecycle(supervisor: EventEmitter<SupervisorEvents>): void {
  const logger = log('runtime');
  supervisor.on('session:start', (event) => {
    logger.info(
      {
        sessionKey: event.key,
        agent: event.agent,
        threadId: event.threadId,
        warm: event.warm,
        restoredTurns: event.restoredTurns,
        activationMs: event.activationMs,
        afterPassivation: event.afterPassivation,
      },
      'session started',
    );
  });
  supervisor.on('session:passivate', ({ key, reason }) => {
    logger.info({ sessionKey: key, reason }, 'session passivated');
  });
  supervisor.on('session:crash', ({ key, turnId, error, inFlightTools }) => {
    logger.warn(
      { sessionKey: key, turnId, inFlightTools, ...errorFields(error) },
      'session worker crashed',
    );
  });
  supervisor.on('session:restart', ({ key, restarts, delayMs }) => {
    logger.info({ sessionKey: key, restarts, delayMs }, 'session restarting from its journal');
  });
  supervisor.on('session:fail', ({ key, error }) => {
    logger.error(
      { sessionKey: key, ...errorFields(error) },
      'session failed: it crashed more often than the restart policy allows',
    );
  });
  supervisor.on('turn:end', ({ key, agent, turnId, outcome, durationMs }) => {
    if (outcome === 'ok') return;
    logger.info({ sessionKey: key, agent, turnId, code: outcome, durationMs }, 'turn failed');
  });
}
