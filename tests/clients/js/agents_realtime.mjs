// `@openai/agents-realtime`: a RealtimeSession over its WebSocket transport (in Node: the `ws`
// package, key as Authorization: Bearer), pointed at the gateway by `connect({ url })`, which
// takes any ws:// or wss:// URL as it is. Steps (JSON lines): a `text` turn
// (session.sendMessage) and an `audio` turn (session.sendAudio) against provider=simulator, each
// in its own session, then `key`: a session against provider=openai (the fake provider) under
// --key-model. Every raw server event is also checked against the SDK's own zod schema of server
// events, so a malformed event the SDK would silently drop is reported.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OpenAIRealtimeWebSocket, RealtimeAgent, RealtimeSession } from '@openai/agents-realtime';
import { EventQueue, speechPcm16, summarize, until, USER_TEXT } from './turns.mjs';
import { options, report, run } from './common.mjs';

const args = options(['url', 'key', 'model', 'key-model']);

// The schema is not exported; load the SDK's own module of it by path.
const sdkEntry = createRequire(import.meta.url).resolve('@openai/agents-realtime');
const { realtimeServerEventSchema } = await import(
  pathToFileURL(join(dirname(sdkEntry), 'openaiRealtimeEvents.mjs')).href
);
const knownTypes = new Set(realtimeServerEventSchema.options.map((option) => option.shape.type.value));

function describe(error) {
  if (error instanceof Error) return error.message;
  return typeof error === 'object' ? JSON.stringify(error) : String(error);
}

function urlFor(provider, model) {
  const url = new URL(args.url);
  url.searchParams.set('provider', provider);
  url.searchParams.set('model', model);
  return url.toString();
}

async function open(provider, model, outputModalities) {
  const agent = new RealtimeAgent({ name: 'assistant', instructions: 'Answer briefly.' });
  const session = new RealtimeSession(agent, {
    transport: new OpenAIRealtimeWebSocket(),
    model,
    config: { outputModalities },
  });
  const queue = new EventQueue();
  const errors = [];
  const invalid = [];
  const unknown = new Set();
  session.on('transport_event', (event) => {
    queue.push(event);
    if (!knownTypes.has(event.type)) {
      unknown.add(event.type);
      return;
    }
    const parsed = realtimeServerEventSchema.safeParse(event);
    if (!parsed.success) invalid.push({ type: event.type, issues: parsed.error.issues.slice(0, 3) });
  });
  session.on('error', (error) => errors.push(describe(error?.error ?? error)));
  await session.connect({ apiKey: args.key, url: urlFor(provider, model) });
  const conn = { next: (timeoutMs) => queue.next(timeoutMs) };
  const checks = () => ({ sdk_errors: errors, invalid, unknown_types: [...unknown] });
  return { session, conn, checks };
}

run(async () => {
  {
    const { session, conn, checks } = await open('simulator', args.model, ['text']);
    session.sendMessage(USER_TEXT);
    const events = await until(conn, 'response.done');
    report({ ...summarize('text', 'ga', events), ...checks() });
    session.close();
  }
  {
    const { session, conn, checks } = await open('simulator', args.model, ['audio']);
    const pcm = speechPcm16();
    const chunk = 4800; // 100 ms
    for (let offset = 0; offset < pcm.length; offset += chunk) {
      session.sendAudio(pcm.slice(offset, offset + chunk).buffer);
    }
    const events = await until(conn, 'response.done');
    report({ ...summarize('audio', 'ga', events), ...checks() });
    session.close();
  }
  {
    const { session, conn, checks } = await open('openai', args['key-model'], ['text']);
    const first = await conn.next(15000);
    report({ step: 'key', first: first.type, model: first.session?.model, ...checks() });
    session.close();
  }
});
