/** What a snapshot and the activity log show: stat cards, the session and error tables. */
import type { DashboardSession, DashboardSessionEvent, DashboardSnapshot } from '../dashboard.js';
import { $, clear, clock, el, mib, ms, percent, short } from './dom.js';
import { state } from './state.js';

/** Lines kept in the activity log. */
const LOG_LINES = 60;

export function describeSession(data: DashboardSessionEvent): string {
  switch (data.kind) {
    case 'start':
      return `${data.afterPassivation ? 'reactivated' : 'worker started'}${data.warm ? ' (warm)' : ' (cold)'} in ${ms(data.activationMs)}`;
    case 'passivate':
      return `passivated (${data.reason})`;
    case 'crash':
      return `worker crashed: ${data.code}`;
    case 'restart':
      return `restarted (${data.restarts})`;
    case 'fail':
      return `failed: ${data.code}`;
    case 'reset':
      return 'conversation reset';
    case 'close':
      return 'closed';
    default:
      return String((data as { kind: unknown }).kind);
  }
}

export function addLog(at: number, key: string, text: string, bad: boolean): void {
  state.log.unshift({ at, key, text, bad });
  if (state.log.length > LOG_LINES) state.log.length = LOG_LINES;
  const list = $('log');
  clear(list);
  for (const entry of state.log) {
    const item = el('li');
    item.append(el('span', 't', clock(entry.at)));
    if (entry.key) item.append(el('span', 'k', entry.key));
    item.append(el('span', entry.bad ? 'bad' : '', entry.text));
    list.append(item);
  }
  $('log-empty').classList.toggle('hidden', state.log.length > 0);
}

const STAT_CARDS: readonly (readonly [string, string])[] = [
  ['sessions', 'Your sessions'],
  ['live', 'Live workers'],
  ['busy', 'Busy sessions'],
  ['queued', 'Queued messages'],
  ['inflight', 'Turns in flight'],
  ['turns', 'Turns ok / failed'],
];

export function renderStats(data: DashboardSnapshot): void {
  const box = $('stats');
  if (!box.firstChild) {
    for (const [id, label] of STAT_CARDS) {
      const card = el('div', 'stat');
      card.append(el('div', 'label', label));
      const value = el('div', 'value', '-');
      value.id = `stat-${id}`;
      card.append(value);
      const sub = el('div', 'sub', '');
      sub.id = `sub-${id}`;
      card.append(sub);
      box.append(card);
    }
  }
  const s = data.server;
  const set = (id: string, value: string | number, sub: string) => {
    $(`stat-${id}`).textContent = String(value);
    $(`sub-${id}`).textContent = sub;
  };
  set('sessions', data.tenant.sessionCount, `server: ${s.sessions} open`);
  set(
    'live',
    `${s.liveWorkers} / ${s.maxLiveSessions}`,
    `warm ${s.warmWorkers}, passivated ${s.passivatedSessions}`,
  );
  set('busy', s.busySessions, `worker starts ${s.workerStarts}`);
  set(
    'queued',
    s.queuedMessages,
    `admission wait ${s.turnsWaitingForAdmission}, activation wait ${s.activationsWaiting}`,
  );
  set('inflight', s.turnsInFlight, `yours ${data.tenant.turnsInFlight}`);
  set('turns', `${s.turns.ok} / ${s.turns.failed}`, `crashes ${s.crashes}, restarts ${s.restarts}`);
}

/** The state pill of a session row: its class and its text. */
function sessionState(row: DashboardSession): readonly [string, string] {
  if (row.status === 'failed') return ['failed', 'failed'];
  if (row.busy) return ['busy', 'in turn'];
  if (row.live) return ['live', 'live'];
  if (row.passivated) return ['passivated', 'passivated'];
  return ['', row.status];
}

export function renderSessions(data: DashboardSnapshot): void {
  const body = $('sessions');
  clear(body);
  const current = $<HTMLInputElement>('chat-key').value.trim();
  for (const row of data.sessions) {
    const tr = el('tr');
    tr.dataset['key'] = row.key;
    tr.dataset['agent'] = row.agent;
    if (row.key === current) tr.classList.add('selected');
    const key = el('td', 'key', row.key);
    key.title = row.key;
    tr.append(key);
    tr.append(el('td', '', row.agent));
    const [cls, text] = sessionState(row);
    const stateCell = el('td');
    stateCell.append(el('span', `state ${cls}`, text));
    tr.append(stateCell);
    tr.append(el('td', '', row.queued));
    tr.append(el('td', '', row.turns));
    tr.append(el('td', row.failedTurns ? 'bad' : '', row.failedTurns));
    tr.append(el('td', '', ms(row.lastDurationMs)));
    const model = el('td', 'model', ms(row.modelCallMs));
    model.title = `mean of ${row.modelCalls} model calls`;
    tr.append(model);
    tr.append(el('td', 'heap', mib(row.heapUsedBytes)));
    tr.append(el('td', 'elu', percent(row.eventLoopUtilization)));
    const outcome = row.lastOutcome;
    const tone = outcome === 'ok' ? 'ok' : outcome ? 'bad' : '';
    const outcomeCell = el('td', `outcome ${tone}`, outcome === null ? '-' : short(outcome));
    if (outcome) outcomeCell.title = outcome;
    tr.append(outcomeCell);
    body.append(tr);
  }
  $('sessions-empty').classList.toggle('hidden', data.sessions.length > 0);
}

export function renderErrors(data: DashboardSnapshot): void {
  const body = $('errors');
  clear(body);
  const codes = new Set([
    ...Object.keys(data.tenant.errors),
    ...Object.keys(data.server.turns.byCode),
  ]);
  for (const code of [...codes].sort()) {
    const tr = el('tr');
    const cell = el('td', 'bad code', short(code));
    cell.title = code;
    tr.append(cell);
    tr.append(el('td', '', data.tenant.errors[code] || 0));
    tr.append(el('td', '', data.server.turns.byCode[code] || 0));
    body.append(tr);
  }
  $('errors-empty').classList.toggle('hidden', codes.size > 0);
}

/** The chat's agent choices: the agents the tenant may use. */
export function renderAgents(data: DashboardSnapshot): void {
  const select = $<HTMLSelectElement>('chat-agent');
  const names = data.tenant.agents;
  const have = [...select.options].map((option) => option.value);
  if (have.join('\n') === names.join('\n')) return;
  const chosen = select.value;
  clear(select);
  for (const name of names) {
    const option = el('option', '', name);
    option.value = name;
    select.append(option);
  }
  if (names.includes(chosen)) select.value = chosen;
}
