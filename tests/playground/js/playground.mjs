// Headless Chromium (Debian's, driven by playwright-core as the client matrix does) opens the
// playground page the gateway serves and uses it as a person would: it picks a provider and a model,
// gives a key, connects, turns the microphone on (Chromium's fake microphone plays --wav, once),
// waits for the spoken replies, turns the microphone off, types a message and waits for the typed
// reply; then it disconnects and does the next session. Everything it reports is read from the
// page (data-testid elements and their data-* figures), one JSON line per step.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { options, report, run } from '../../clients/js/common.mjs';

const args = options(['url', 'executable', 'wav', 'sessions', 'screenshot']);
const sessions = JSON.parse(args.sessions);
const WAIT_MS = 25000;
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  `--use-file-for-fake-audio-capture=${args.wav}%noloop`,
];

const byTestId = (page, id) => page.getByTestId(id);

/** What the page shows now: status, transcript, event log and figures. */
async function snapshot(page) {
  return page.evaluate(() => {
    const testid = (id) => document.querySelector(`[data-testid="${id}"]`);
    const status = testid('status');
    return {
      status: status.textContent,
      state: status.dataset.state,
      transcript: [...testid('transcript').children].map((item) => ({
        role: item.dataset.role,
        text: item.querySelector('.text').textContent,
        note: item.querySelector('.note').textContent,
      })),
      events: [...testid('events').children].map((item) => ({ ...item.dataset })),
      latency: { text: testid('latency').textContent, ...testid('latency').dataset },
      usage: { text: testid('usage').textContent, ...testid('usage').dataset },
      playback: { text: testid('playback').textContent, ...testid('playback').dataset },
    };
  });
}

/** Wait until the transcript has `count` model replies containing `text`. */
async function replies(page, text, count) {
  await page.waitForFunction(
    ([text, count]) =>
      [...document.querySelectorAll('[data-testid="transcript"] [data-role="assistant"] .text')].filter((node) =>
        node.textContent.includes(text),
      ).length >= count,
    [text, count],
    { timeout: WAIT_MS },
  );
}

async function converse(page, session, index) {
  await byTestId(page, 'provider').selectOption(session.provider);
  await byTestId(page, 'model').fill(session.model);
  await byTestId(page, 'key').fill(session.key ?? '');
  await byTestId(page, 'connect').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="status"]').dataset.state === 'open', null, {
    timeout: WAIT_MS,
  });
  const opened = await snapshot(page);

  // Speak: the fake microphone starts playing the file when the page opens it.
  const spokenAt = Date.now();
  await byTestId(page, 'mic').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="mic"]').getAttribute('aria-pressed') === 'true');
  await replies(page, session.spokenReply, session.spokenTurns);
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="playback"]').dataset.scheduledMs) > 0);
  // The file's last silence plays out, so no speech is cut off mid-turn, then the microphone goes off.
  await page.waitForTimeout(Math.max(0, session.speechSeconds * 1000 - (Date.now() - spokenAt)));
  await byTestId(page, 'mic').click();
  const spoken = await snapshot(page);

  await byTestId(page, 'text-input').fill(session.text);
  await byTestId(page, 'send').click();
  await replies(page, session.typedReply, 1);
  await page.waitForFunction(
    (turns) => Number(document.querySelector('[data-testid="usage"]').dataset.responses) >= turns + 1,
    session.spokenTurns,
    { timeout: WAIT_MS },
  );
  if (session.screenshot && args.screenshot) await page.screenshot({ path: args.screenshot });
  const typed = await snapshot(page);

  await byTestId(page, 'disconnect').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="status"]').dataset.state === 'closed', null, {
    timeout: WAIT_MS,
  });
  report({ step: `session-${index}`, opened, spoken, typed, closed: await snapshot(page) });
}

run(async () => {
  const profile = mkdtempSync(join(tmpdir(), 'rtgw-playground-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: args.executable,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 860 },
  });
  const problems = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    // Every Content-Security-Policy violation the page causes, recorded before its scripts run.
    await page.addInitScript(() => {
      window.cspViolations = [];
      document.addEventListener('securitypolicyviolation', (event) =>
        window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`),
      );
    });
    page.on('pageerror', (error) => problems.push(`pageerror: ${error}`));
    page.on('console', (message) => {
      process.stderr.write(`console.${message.type()}: ${message.text()}\n`);
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    const answer = await page.goto(args.url);
    report({
      step: 'page',
      status: answer.status(),
      headers: answer.headers(),
      version: context.browser()?.version() ?? null,
      user_agent: await page.evaluate(() => navigator.userAgent),
      testids: await page.evaluate(() => [...document.querySelectorAll('[data-testid]')].map((node) => node.dataset.testid)),
    });
    for (const [index, session] of sessions.entries()) await converse(page, session, index);
    report({ step: 'checks', problems, csp_violations: await page.evaluate(() => window.cspViolations) });
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}, 120);
