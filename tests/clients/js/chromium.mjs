// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core over CDP) loads
// page.html from a local HTTP server on 127.0.0.1 and runs its turns with the browser's own
// WebSocket against ?provider=--provider under --model; the page returns one record per step
// (`open`, `text`, `audio`) and this script prints them as JSON lines.
// Console messages from the page go to stderr.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { options, report, run } from './common.mjs';

const args = options(['gateway', 'key', 'protocol', 'provider', 'model', 'executable']);
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const FILES = {
  '/': ['page.html', 'text/html; charset=utf-8'],
  '/turns.mjs': ['turns.mjs', 'text/javascript; charset=utf-8'],
};

function serve() {
  const server = createServer((request, response) => {
    const file = FILES[new URL(request.url, 'http://x').pathname];
    if (!file) {
      response.writeHead(request.url === '/favicon.ico' ? 204 : 404).end();
      return;
    }
    response.writeHead(200, { 'content-type': file[1], 'cache-control': 'no-store' });
    response.end(readFileSync(new URL(file[0], import.meta.url)));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

run(async () => {
  const server = await serve();
  const profile = mkdtempSync(join(tmpdir(), 'rtgw-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: args.executable ?? '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (message) => process.stderr.write(`console.${message.type()}: ${message.text()}\n`));
    page.on('pageerror', (error) => report({ step: 'pageerror', exception: String(error) }));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => window.clientReady === true);
    report({ step: 'browser', version: context.browser()?.version() ?? null, user_agent: await page.evaluate(() => navigator.userAgent) });
    const results = await page.evaluate((options) => window.clientTurns(options), {
      gateway: args.gateway,
      key: args.key,
      protocol: args.protocol,
      provider: args.provider,
      model: args.model,
    });
    for (const record of results) report(record);
  } finally {
    await context.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
