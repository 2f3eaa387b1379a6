// Builds the dashboard page into one HTML file the gateway serves: page.css minified into its
// one inline <style>, page.ts (with what it imports: the shared quantile, eventsource-parser)
// bundled and minified into its one inline <script>. The gateway hashes both blocks for its
// Content Security Policy, so the page needs no other file and runs nothing else.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { build, transform } from 'esbuild';

const source = 'src/gateway/dashboard';
const target = 'dist/src/gateway/dashboard/page.html';

const script = await build({
  entryPoints: [`${source}/page.ts`],
  bundle: true,
  write: false,
  platform: 'browser',
  format: 'iife',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const style = await transform(await readFile(`${source}/page.css`, 'utf8'), {
  loader: 'css',
  minify: true,
  logLevel: 'warning',
});

/** Replaces the one `placeholder` of `html` (a replacer function: no `$` patterns). */
function inline(html, placeholder, block) {
  const at = html.indexOf(placeholder);
  if (at < 0 || html.indexOf(placeholder, at + 1) >= 0) {
    throw new Error(`${source}/page.html must hold exactly one ${placeholder}`);
  }
  return html.replace(placeholder, () => block);
}

const js = script.outputFiles[0].text.trim();
const css = style.code.trim();
// The gateway reads each block between its tags: neither may close its tag early.
if (js.includes('</script') || css.includes('</style')) {
  throw new Error('the dashboard script or style closes its own tag');
}
let html = await readFile(`${source}/page.html`, 'utf8');
html = html.replace(/^<!-- The build inlines .*-->\n/m, '');
html = inline(html, '<link rel="stylesheet" href="page.css">', `<style>${css}</style>`);
html = inline(html, '<script src="page.js"></script>', `<script>${js}</script>`);
await mkdir(dirname(target), { recursive: true });
await writeFile(target, html);
