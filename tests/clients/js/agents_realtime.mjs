// `@openai/agents-realtime`: a RealtimeSession over its WebSocket transport (in Node: the `ws`
// package, key as Authorization: Bearer), pointed at the gateway by `connect({ url })`, which
// takes any ws:// or wss:// URL as it is. Steps (JSON lines): a `text` turn
// (session.sendMessage) and an `audio` turn (session.sendAudio of speech, then nothing: the SDK's
// session asks for semantic_vad turn detection, and the provider's VAD ends the turn and starts the
// reply, as the SDK is used), each in its own session, against ?provider=--provider under --model.
// Every raw server event is also checked against the SDK's own zod schema of server events, so a
// malformed event the SDK would silently drop is reported.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OpenAIRealtimeWebSocket, RealtimeAgent, RealtimeSession } from '@openai/agents-realtime';
import { EventQueue, speechPcm16, summarize, until, USER_TEXT } from './turns.mjs';
import { options, report, run } from './common.mjs';

const args = options(['url', 'key', 'provider', 'model']);

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
  const closed = new Promise((resolve) => {
    session.transport.on('connection_change', (status) => {
      if (status === 'disconnected') resolve();
    });
  });
  const conn = { next: (timeoutMs) => queue.next(timeoutMs), closed };
  const checks = () => ({ sdk_errors: errors, invalid, unknown_types: [...unknown] });
  return { session, conn, checks };
}

/** Close the session and wait until its socket has closed (at most 5 s). */
async function close(session, conn) {
  session.close();
  await Promise.race([conn.closed, new Promise((resolve) => setTimeout(resolve, 5000))]);
}

run(async () => {
  {
    const { session, conn, checks } = await open(args.provider, args.model, ['text']);
    session.sendMessage(USER_TEXT);
    const events = await until(conn, 'response.done');
    report({ ...summarize('text', 'ga', events), ...checks() });
    await close(session, conn);
  }
  {
    const { session, conn, checks } = await open(args.provider, args.model, ['audio']);
    const pcm = speechPcm16();
    const chunk = 4800; // 100 ms
    for (let offset = 0; offset < pcm.length; offset += chunk) {
      session.sendAudio(pcm.slice(offset, offset + chunk).buffer);
    }
    const events = await until(conn, 'response.done');
    report({ ...summarize('audio', 'ga', events), ...checks() });
    await close(session, conn);
  }
});
