/**
 * Signing in and the dashboard's event stream: connect with the tenant's token, render what
 * arrives, reconnect with backoff, and sign out when the token is refused.
 */
import type {
  DashboardHello,
  DashboardSessionEvent,
  DashboardSnapshot,
  DashboardTurn,
} from '../dashboard.js';
import { renderChart } from './chart.js';
import { $, ms } from './dom.js';
import { errorOf, readEvents } from './events.js';
import {
  addLog,
  describeSession,
  renderAgents,
  renderErrors,
  renderSessions,
  renderStats,
} from './render.js';
import { base, headers, state, TOKEN_KEY, TURNS_KEPT } from './state.js';

function setStatus(kind: 'live' | 'wait' | 'down', text: string): void {
  const node = $('status');
  node.className = `pill ${kind}`;
  node.textContent = text;
}

function showLogin(message?: string): void {
  $('main').classList.add('hidden');
  $('signout').classList.add('hidden');
  $('login').classList.remove('hidden');
  $('who').textContent = '';
  $('login-error').textContent = message || '';
  setStatus('down', 'signed out');
  $('token').focus();
}

function showMain(): void {
  $('login').classList.add('hidden');
  $('main').classList.remove('hidden');
  $('signout').classList.remove('hidden');
}

function stop(): void {
  window.clearTimeout(state.retryTimer);
  state.abort?.abort();
  state.abort = null;
}

export function signOut(message: string): void {
  stop();
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin(message);
}

function retry(slow = false): void {
  window.clearTimeout(state.retryTimer);
  const delay = slow ? Math.max(3000, state.retryMs) : state.retryMs;
  state.retryMs = Math.min(10000, state.retryMs * 2);
  state.retryTimer = window.setTimeout(() => void connect(), delay);
}

/** Opens the dashboard's event stream with the token (or asks for one), until it ends. */
export async function connect(): Promise<void> {
  stop();
  if (!state.token) {
    showLogin();
    return;
  }
  const controller = new AbortController();
  state.abort = controller;
  setStatus('wait', 'connecting');
  let response: Response;
  try {
    response = await fetch(`${base}/v1/dashboard/events`, {
      headers: headers({ accept: 'text/event-stream' }),
      signal: controller.signal,
      cache: 'no-store',
    });
  } catch {
    if (!controller.signal.aborted) {
      setStatus('down', 'server unreachable');
      retry();
    }
    return;
  }
  if (response.status === 401) {
    signOut('That token is not valid on this server.');
    return;
  }
  if (!response.ok) {
    const error = await errorOf(response);
    setStatus('down', error.code);
    retry(true);
    return;
  }
  showMain();
  setStatus('live', 'live');
  state.retryMs = 1000;
  let bye = false;
  try {
    await readEvents(response, (event, data) => {
      if (event === 'bye') bye = true;
      onFrame(event, data);
    });
  } catch {
    // The stream broke (or was aborted): reconnect below unless this tab stopped it.
  }
  if (controller.signal.aborted) return;
  setStatus(bye ? 'down' : 'wait', bye ? 'server stopped' : 'reconnecting');
  retry(bye);
}

function onFrame(event: string, data: unknown): void {
  if (event === 'hello') {
    const hello = data as DashboardHello;
    $('who').textContent = `tenant ${hello.tenant}`;
    state.turns = Array.isArray(hello.turns) ? [...hello.turns] : [];
    renderChart();
  } else if (event === 'snapshot') {
    const snapshot = data as DashboardSnapshot;
    state.snapshot = snapshot;
    renderStats(snapshot);
    renderSessions(snapshot);
    renderErrors(snapshot);
    renderAgents(snapshot);
    if (snapshot.closing) setStatus('wait', 'server closing');
  } else if (event === 'turn') {
    const turn = data as DashboardTurn;
    state.turns.push(turn);
    if (state.turns.length > TURNS_KEPT) state.turns.splice(0, state.turns.length - TURNS_KEPT);
    renderChart();
    const ok = turn.outcome === 'ok';
    const text = ok ? `turn ok in ${ms(turn.durationMs)}` : `turn failed: ${turn.outcome}`;
    addLog(turn.at, turn.key, text, !ok);
  } else if (event === 'session') {
    const change = data as DashboardSessionEvent;
    const bad = change.kind === 'crash' || change.kind === 'fail';
    addLog(change.at, change.key, describeSession(change), bad);
  } else if (event === 'bye') {
    addLog(Date.now(), '', 'server shutting down', true);
  }
}
