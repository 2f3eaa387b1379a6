/**
 * The dashboard page, served at `GET /` and `GET /dashboard`: one self-contained HTML document
 * (inline CSS and JS, no CDN) under a strict Content Security Policy that allows only its own
 * two inline blocks. Its sources are the files in `dashboard/` (page.html, page.css and the
 * page's TypeScript); `scripts/build-dashboard.mjs` inlines them into one file of the build.
 *
 * The page asks for the tenant's token, keeps it in sessionStorage and sends it as a bearer
 * token; it renders every value as text (no `innerHTML`), so a session key or a reply can
 * never become markup.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { InternalError } from '../errors.js';

/**
 * Where the built page is. Compiled, it sits beside this module; from the TypeScript sources
 * (tests) it is the build output, which `npm test` makes first (as for worker entry files).
 */
const fromSources = import.meta.url.endsWith('.ts');
const PAGE_URL = new URL(
  fromSources ? '../../dist/src/gateway/dashboard/page.html' : './dashboard/page.html',
  import.meta.url,
);

interface Page {
  readonly html: string;
  readonly headers: Readonly<Record<string, string>>;
}

let page: Page | undefined;

/** The one inline block between `open` and `close` (the build writes exactly one of each). */
function inline(html: string, open: string, close: string): string {
  const start = html.indexOf(open);
  const end = html.indexOf(close, start);
  if (start < 0 || end < 0 || html.indexOf(open, start + open.length) >= 0) {
    throw new InternalError(`the dashboard page must hold exactly one ${open} block`);
  }
  return html.slice(start + open.length, end);
}

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

function load(): Page {
  const path = fileURLToPath(PAGE_URL);
  if (!existsSync(path)) {
    throw new InternalError(
      `the dashboard page ${path} is missing: run \`npm run build\`${fromSources ? ' before running from the TypeScript sources' : ''}`,
    );
  }
  const html = readFileSync(path, 'utf8');
  // Only the page's own inline style and script may run; it talks to its own origin only.
  const contentSecurityPolicy = [
    "default-src 'none'",
    `script-src ${sha256(inline(html, '<script>', '</script>'))}`,
    `style-src ${sha256(inline(html, '<style>', '</style>'))}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return {
    html,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(html)),
      'cache-control': 'no-store',
      'content-security-policy': contentSecurityPolicy,
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
    },
  };
}

/** Answers with the dashboard page (it holds no data: everything comes with the token). */
export function sendDashboardPage(res: ServerResponse): void {
  page ??= load();
  res.writeHead(200, page.headers);
  res.end(page.html);
}
