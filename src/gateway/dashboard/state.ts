/** What the dashboard page holds while it is open. */
import type { DashboardSnapshot, DashboardTurn } from '../dashboard.js';

export const TOKEN_KEY = 'agentcell.dashboard.token';
export const CHAT_KEY = 'agentcell.dashboard.session';
/** Turns kept for the chart (the server sends at most this many more since the page opened). */
export const TURNS_KEPT = 500;

/** Where the gateway is mounted: the page is served at its base path (and `/dashboard`). */
export const base = location.pathname.replace(/\/dashboard\/?$/, '').replace(/\/+$/, '');

export interface LogEntry {
  readonly at: number;
  readonly key: string;
  readonly text: string;
  readonly bad: boolean;
}

export const state: {
  token: string | null;
  abort: AbortController | null;
  retryMs: number;
  retryTimer: number | undefined;
  turns: DashboardTurn[];
  snapshot: DashboardSnapshot | null;
  log: LogEntry[];
  sending: boolean;
} = {
  token: sessionStorage.getItem(TOKEN_KEY),
  abort: null,
  retryMs: 1000,
  retryTimer: undefined,
  turns: [],
  snapshot: null,
  log: [],
  sending: false,
};

/** Request headers with the tenant's token. */
export function headers(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return { authorization: `Bearer ${state.token}`, ...extra };
}
