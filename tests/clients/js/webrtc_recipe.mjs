// The README's WebRTC recipe in headless Chromium: a page on http://127.0.0.1:--page-port loads
// --recipe (the README's `startCall`, as a classic script) and calls
// startCall(--gateway, --token, --calls) with a fake microphone; this script prints what came back
// (the call id, the peer connection's state, the SDP it offered and was answered) as JSON lines.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { options, report, run } from './common.mjs';

const args = options(['gateway', 'token', 'calls', 'recipe', 'page-port', 'executable']);
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream', // a synthetic microphone
  '--use-fake-ui-for-media-stream', // and no permission prompt
  '--autoplay-policy=no-user-gesture-required',
];
const PAGE = '<!doctype html><meta charset="utf-8"><title>WebRTC recipe</title><script src="/recipe.js"></script>';

function serve(port) {
  const server = createServer((request, response) => {
    const path = new URL(request.url, 'http://x').pathname;
    if (path === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    } else if (path === '/recipe.js') {
      response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      response.end(readFileSync(args.recipe));
    } else {
      response.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(Number(port), '127.0.0.1', () => resolve(server)));
}

run(async () => {
  const server = await serve(args['page-port']);
  const profile = mkdtempSync(join(tmpdir(), 'rtgw-webrtc-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: args.executable ?? '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (message) => process.stderr.write(`console.${message.type()}: ${message.text()}\n`));
    page.on('pageerror', (error) => report({ step: 'pageerror', exception: String(error) }));
    await page.goto(`http://127.0.0.1:${args['page-port']}/`);
    const result = await page.evaluate(async ({ gateway, token, calls }) => {
      try {
        const { pc, events, callId } = await startCall(gateway, token, calls);
        return {
          step: 'call',
          call_id: callId,
          signaling_state: pc.signalingState,
          offer: pc.localDescription.sdp,
          answer: pc.remoteDescription.sdp,
          channel: events.label,
          origin: location.origin,
        };
      } catch (error) {
        return { step: 'call', error: String(error) };
      }
    }, { gateway: args.gateway, token: args.token, calls: args.calls });
    report(result);
  } finally {
    await context.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
