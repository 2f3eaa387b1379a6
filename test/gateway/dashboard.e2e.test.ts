/**
 * The dashboard in a real browser: headless Chromium driven by playwright-core (the system's
 * or the one a dev dependency ships; see test/support/chromium.ts). The server runs in-process
 * on the bundled mock LLM and a FileStore. The test signs in with a tenant token, sends a
 * message through the chat box, watches the reply stream in, sees the session in the live
 * table, and saves a screenshot to test-output/dashboard.png. Without a Chromium that starts it
 * fails (it does not skip).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { type RunningServer, startServer } from '../../src/gateway/serve.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { ToolRegistry } from '../../src/tools/registry.js';
import { launchChromium } from '../support/chromium.js';
import { payTool } from './helpers.js';

const SCREENSHOT = resolve('test-output/dashboard.png');
const ACME = 'acme-browser-token-0123456789';
const GLOBEX = 'globex-browser-token-0123456789';
const API_KEY = 'sk-SENTINEL-browser';
/** A session key that would run script if the page ever rendered keys as markup. */
const HOSTILE_KEY = '<img src=x onerror="window.__xss=1">';
/** Page-side expressions (strings: this project's TypeScript has no DOM types). */
const STORED_TOKEN = "sessionStorage.getItem('agentcell.dashboard.token')";
/** Records, in `window.__seen`, every text the last reply bubble shows while it streams. */
const RECORD_REPLY_TEXTS = `(() => {
  const seen = [];
  window.__seen = seen;
  new MutationObserver(() => {
    const text = document.querySelector('#transcript .msg.assistant:last-child .text');
    if (text && text.textContent && seen.at(-1) !== text.textContent) seen.push(text.textContent);
  }).observe(document.getElementById('transcript'), {
    childList: true,
    subtree: true,
    characterData: true,
  });
})()`;

let mock: MockLlm;
let running: RunningServer;
let browser: Browser;
let page: Page;
let storeDir: string;
const problems: string[] = [];
/** Runs of the `pay` tool, which waits for a person's approval. */
const { pay, paid } = payTool();

async function post(token: string, key: string, body: object): Promise<Response> {
  return fetch(`${running.url}/v1/sessions/${encodeURIComponent(key)}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

beforeAll(async () => {
  // Slow enough that a reply arrives in several chunks the page must stream.
  mock = await startMockLlm({
    latency: { firstTokenMs: 40, tokensPerSecond: 50 },
    rules: [
      {
        match: /^pay the printer/,
        steps: [
          { toolCalls: [{ name: 'pay', arguments: { amount: 42, card: '4242' } }] },
          { reply: 'paid the printer' },
        ],
      },
    ],
  });
  storeDir = mkdtempSync(join(tmpdir(), 'agentcell-dashboard-'));
  const agent = (name: string, instructions: string) =>
    new Agent({
      name,
      instructions,
      llm: 'mock-model',
      baseUrl: mock.url,
      apiKey: API_KEY,
      execution: { maxRetries: 0 },
    });
  const tools = new ToolRegistry();
  tools.register(pay);
  const cashier = new Agent({
    name: 'cashier',
    llm: 'mock-model',
    baseUrl: mock.url,
    apiKey: API_KEY,
    tools: [pay],
    approval: { tools: ['pay'], redact: ['card'] },
  });
  running = await startServer({
    agents: [agent('support', 'Answer briefly.'), agent('triage', 'Sort the request.'), cashier],
    tools,
    tenants: [
      { id: 'acme', token: ACME },
      { id: 'globex', token: GLOBEX },
    ],
    store: storeDir,
    port: 0,
  });
  // Sessions that exist before the page opens: a hostile key of acme's, and globex's own.
  expect((await post(ACME, HOSTILE_KEY, { message: 'hi' })).status).toBe(200);
  expect((await post(GLOBEX, 'globex-private', { message: 'hi' })).status).toBe(200);

  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1360, height: 980 } });
  // Fail within the test's time, naming the step, rather than at the test timeout.
  page.setDefaultTimeout(8_000);
  page.on('console', (message) => {
    if (['error', 'warning', 'verbose'].includes(message.type())) {
      problems.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    // A stream the page aborts on sign-out is not a failure.
    if (!request.url().includes('/v1/dashboard/events')) {
      problems.push(`request failed: ${request.url()}`);
    }
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await running?.close();
  await mock?.close();
  if (storeDir) rmSync(storeDir, { recursive: true, force: true });
});

describe('the dashboard in Chromium', () => {
  it('signs in, chats with a streamed reply, lists the session live, and shows errors', {
    timeout: 90_000,
  }, async () => {
    await page.goto(`${running.url}/`);
    await page.locator('#login').waitFor({ state: 'visible' });
    await page.fill('#token', 'wrong-token-0123456789');
    await page.click('#login-form button[type=submit]');
    await expect.poll(() => page.textContent('#login-error')).toContain('not valid');
    // Chromium logs the refused request (401) of the wrong token; that one was expected.
    expect(problems).toEqual([
      'console error: Failed to load resource: the server responded with a status of 401 (Unauthorized)',
    ]);
    problems.length = 0;

    await page.fill('#token', ACME);
    await page.click('#login-form button[type=submit]');
    await page.locator('#main').waitFor({ state: 'visible' });
    await expect.poll(() => page.textContent('#status')).toBe('live');
    expect(await page.textContent('#who')).toBe('tenant acme');
    expect(await page.evaluate(STORED_TOKEN)).toBe(ACME);

    // The hostile key is listed as text; no element or script came from it.
    const hostileRow = page.locator('#sessions tr', { hasText: 'onerror' });
    await hostileRow.waitFor();
    expect(await hostileRow.locator('td.key').textContent()).toBe(HOSTILE_KEY);
    expect(await page.locator('#sessions img').count()).toBe(0);
    expect(await page.evaluate('window.__xss')).toBeUndefined();
    // Another tenant's session is not listed.
    expect(await page.textContent('#sessions')).not.toContain('globex-private');

    await page.evaluate(RECORD_REPLY_TEXTS);
    await page.fill('#chat-key', 'browser-1');
    await page.selectOption('#chat-agent', 'support');
    const message = 'hello from the browser, please stream this reply in several chunks';
    await page.fill('#chat-input', message);
    await page.click('#chat-send');

    const reply = page.locator('#transcript .msg.assistant[data-state="done"]');
    await reply.waitFor({ timeout: 10_000 });
    expect(await reply.locator('.text').textContent()).toBe(`echo: ${message}`);
    expect(Number(await reply.getAttribute('data-deltas'))).toBeGreaterThan(1);
    const seen = await page.evaluate<string[]>('window.__seen');
    const partial = seen.filter((text) => text.length < `echo: ${message}`.length);
    expect(partial.length).toBeGreaterThan(1);
    for (const text of partial) expect(`echo: ${message}`.startsWith(text)).toBe(true);
    expect(await page.locator('#transcript .msg.user').last().textContent()).toBe(message);

    // The session appears in the live table, with its agent and its turn.
    const row = page.locator('#sessions tr[data-key="browser-1"]');
    await row.waitFor({ timeout: 5_000 });
    await expect.poll(() => row.locator('td').nth(4).textContent()).toBe('1');
    expect(await row.locator('td').nth(1).textContent()).toBe('support');
    expect(await row.locator('td.outcome').textContent()).toBe('ok');
    // The session's own figures: its model calls, its worker's heap and event-loop use.
    await expect.poll(() => row.locator('td.heap').textContent()).toMatch(/^[0-9.]+ MiB$/);
    expect(await row.locator('td.elu').textContent()).toMatch(/^[0-9]+%$/);
    expect(await row.locator('td.model').textContent()).toMatch(/^[0-9.]+ m?s$/);
    expect(await page.locator('#chart rect.bar').count()).toBeGreaterThanOrEqual(1);
    await expect.poll(() => page.textContent('#log')).toContain('browser-1');

    // A failing turn on another agent: the error shows in the chat and in the error table.
    await page.click('#chat-new');
    await page.selectOption('#chat-agent', 'triage');
    await page.fill('#chat-input', '[[mock:500]] this one fails');
    await page.click('#chat-send');
    const failed = page.locator('#transcript .msg.assistant[data-state="error"]');
    await failed.waitFor({ timeout: 10_000 });
    expect(await failed.textContent()).toContain('AGENTCELL_LLM_REQUEST_FAILED');
    const errorRow = page.locator('#errors td.code[title="AGENTCELL_LLM_REQUEST_FAILED"]');
    await errorRow.waitFor({ timeout: 5_000 });
    expect(await errorRow.textContent()).toBe('LLM_REQUEST_FAILED');
    await expect.poll(() => page.locator('#sessions tr').count()).toBe(3);

    // Back to the first session: its history is loaded from the journal.
    await row.click();
    await expect.poll(() => page.locator('#transcript .msg').count()).toBe(2);
    expect(await page.locator('#transcript .msg.assistant').textContent()).toBe(`echo: ${message}`);

    // A tool that needs approval: the reply waits, with Approve and Deny buttons.
    await page.click('#chat-new');
    await page.selectOption('#chat-agent', 'cashier');
    await page.fill('#chat-input', 'pay the printer');
    await page.click('#chat-send');
    const approve = page.locator(
      '#transcript .msg.assistant[data-state="approval"] button.approve',
    );
    await approve.waitFor({ timeout: 10_000 });
    expect(await page.locator('#transcript .approval .ask').textContent()).toContain('[redacted]');
    expect(paid).toEqual([]);
    await approve.click();
    const answered = page.locator('#transcript .msg.assistant').last();
    await expect.poll(() => answered.getAttribute('data-state')).toBe('done');
    expect(await answered.locator('.text').textContent()).toBe('paid the printer');
    expect(await answered.locator('.approval').getAttribute('data-answer')).toBe('approved');
    expect(paid).toEqual([42]);
    // The call is shown redacted wherever it appears, its tool-start note included.
    expect(await answered.textContent()).not.toContain('4242');

    mkdirSync(resolve('test-output'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);

    const html = await page.content();
    expect(html).not.toContain(API_KEY);
    expect(problems).toEqual([]);

    await page.click('#signout');
    await page.locator('#login').waitFor({ state: 'visible' });
    expect(await page.evaluate(STORED_TOKEN)).toBeNull();
  });
});
