/** The reset policy: when a session starts a new conversation instead of going on. */
import type { ResetPolicy } from './options.js';

/** Whether a new conversation starts now: idle too long, or a daily boundary (UTC) passed. */
export function shouldReset(policy: ResetPolicy, lastActivity: number, now: number): boolean {
  if (policy.idleMs !== undefined && now - lastActivity >= policy.idleMs) return true;
  if (policy.dailyAtHour !== undefined) {
    const boundary = new Date(lastActivity);
    boundary.setUTCHours(policy.dailyAtHour, 0, 0, 0);
    if (boundary.getTime() <= lastActivity) boundary.setUTCDate(boundary.getUTCDate() + 1);
    if (now >= boundary.getTime()) return true;
  }
  return false;
}
