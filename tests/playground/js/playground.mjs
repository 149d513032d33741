// Headless Chromium (Debian's, driven by playwright-core as the client matrix does) opens the
// playground page the gateway serves and uses it as a person would, for each session of --sessions
// (JSON): it picks a provider and a model, gives a key, connects, turns the microphone on
// (Chromium's fake microphone plays --wav, once), waits for the spoken replies, turns the microphone
// off, types a message and waits for the typed reply, then disconnects. Everything it reports is
// read from the page (data-testid elements and their data-* figures), one JSON line per step.
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

/** Wait until `count` responses have ended (response.done, whatever their status). */
async function responsesDone(page, count) {
  await page.waitForFunction(
    (count) => Number(document.querySelector('[data-testid="usage"]').dataset.responses) >= count,
    count,
    { timeout: WAIT_MS },
  );
}

/** Wait for a model reply containing `reply` after the user's typed `text`, and its response.done. */
async function typedReply(page, text, reply, responsesBefore) {
  await page.waitForFunction(
    ([text, reply, responsesBefore]) => {
      const entries = [...document.querySelectorAll('[data-testid="transcript"] > li')];
      const typed = entries.findLastIndex((item) => item.dataset.role === 'user' && item.textContent.includes(text));
      const answered = entries
        .slice(typed + 1)
        .some((item) => item.dataset.role === 'assistant' && item.querySelector('.text').textContent.includes(reply));
      const done = Number(document.querySelector('[data-testid="usage"]').dataset.responses) > Number(responsesBefore);
      return typed >= 0 && answered && done;
    },
    [text, reply, responsesBefore],
    { timeout: WAIT_MS },
  );
}

const waitForState = (page, state) =>
  page.waitForFunction((state) => document.querySelector('[data-testid="status"]').dataset.state === state, state, {
    timeout: WAIT_MS,
  });

/**
 * One session: `page` (a URL to load first), `turns` (`server_vad` or `push_to_talk`), `provider`,
 * `model`, `key`; `refused: true` when the gateway is expected to refuse it; `spokenReply` (with
 * server VAD: the microphone plays the file, `spokenTurns` replies contain it, the file lasts
 * `speechSeconds`; with `holds`, push to talk: one reply per hold); `text` and `typedReply` for a
 * typed turn.
 */
async function converse(page, session, index) {
  if (session.page) await page.goto(session.page);
  await page.locator(`input[name="turns"][value="${session.turns ?? 'server_vad'}"]`).check();
  await byTestId(page, 'provider').selectOption(session.provider);
  await byTestId(page, 'model').fill(session.model);
  await byTestId(page, 'key').fill(session.key ?? '');
  await byTestId(page, 'connect').click();
  if (session.refused) {
    await waitForState(page, 'error');
    report({ step: `session-${index}`, refused: await snapshot(page) });
    return;
  }
  await waitForState(page, 'open');
  const record = { step: `session-${index}`, opened: await snapshot(page) };

  if (session.spokenReply && !session.holds) {
    // Speak: the fake microphone starts playing the file when the page opens it.
    const spokenAt = Date.now();
    await byTestId(page, 'mic').click();
    await page.waitForFunction(() => document.querySelector('[data-testid="mic"]').getAttribute('aria-pressed') === 'true');
    await replies(page, session.spokenReply, session.spokenTurns);
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="playback"]').dataset.scheduledMs) > 0);
    // The file's last silence plays out, so no speech is cut off mid-turn, then the microphone goes off.
    await page.waitForTimeout(Math.max(0, session.speechSeconds * 1000 - (Date.now() - spokenAt)));
    await byTestId(page, 'mic').click();
    await responsesDone(page, session.spokenTurns);
    record.spoken = await snapshot(page);
  }

  if (session.holds) {
    // Push to talk: hold the button (pointer) or Space from `from` to `to` seconds after the
    // microphone opens, for each turn.
    await byTestId(page, 'mic').click();
    const micAt = Date.now();
    const until = (seconds) => page.waitForTimeout(Math.max(0, seconds * 1000 - (Date.now() - micAt)));
    const held = [];
    for (const hold of session.holds) {
      await until(hold.from);
      if (hold.by === 'pointer') {
        await byTestId(page, 'talk').hover();
        await page.mouse.down();
      } else await page.keyboard.down('Space');
      const start = Date.now();
      await until(hold.to);
      if (hold.by === 'pointer') await page.mouse.up();
      else await page.keyboard.up('Space');
      held.push((Date.now() - start) / 1000);
    }
    await replies(page, session.spokenReply, session.holds.length);
    await responsesDone(page, session.holds.length);
    await byTestId(page, 'mic').click();
    record.held = held;
    record.spoken = await snapshot(page);
  }

  if (session.text) {
    const before = await snapshot(page);
    await byTestId(page, 'text-input').fill(session.text);
    await byTestId(page, 'send').click();
    await typedReply(page, session.text, session.typedReply, before.usage.responses);
    if (session.screenshot && args.screenshot) await page.screenshot({ path: args.screenshot });
    record.typed = await snapshot(page);
  }

  await byTestId(page, 'disconnect').click();
  await waitForState(page, 'closed');
  record.closed = await snapshot(page);
  report(record);
}

run(async () => {
  const profile = mkdtempSync(join(tmpdir(), 'rtgw-playground-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: args.executable,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 980 },
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
    page.on('pageerror', (error) => problems.push({ kind: 'pageerror', text: String(error) }));
    page.on('console', (message) => {
      process.stderr.write(`console.${message.type()}: ${message.text()}\n`);
      if (message.type() === 'error') problems.push({ kind: 'console', text: message.text(), url: message.location().url });
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
    for (const [index, session] of sessions.entries()) {
      try {
        await converse(page, session, index);
      } catch (error) {
        // What the page showed when it went wrong, for the failure's message.
        report({ step: `session-${index}-failed`, page: await snapshot(page).catch(() => null) });
        throw error;
      }
    }
    report({ step: 'checks', problems, csp_violations: await page.evaluate(() => window.cspViolations) });
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}, 120);
