// The `openai` npm SDK's realtime clients against the gateway:
//   --transport ws         OpenAIRealtimeWS (the `ws` package; key as Authorization: Bearer)
//   --transport websocket  OpenAIRealtimeWebSocket (the runtime's WHATWG WebSocket; key as the
//                          openai-insecure-api-key.<key> subprotocol)
// GA (`openai/realtime/*`) or beta (`openai/beta/realtime/*`). The SDK always builds
// wss://{baseURL host}{baseURL path}/realtime?{baseURL query}&model=..., so the gateway is reached
// over TLS, with its test CA in NODE_EXTRA_CA_CERTS. Steps (JSON lines): `open`, then a `text` and
// an `audio` turn (js/turns.mjs: the audio turn appends speech and leaves the rest to server VAD, as
// the session's default turn detection has it) on one connection to ?provider=--provider under
// --model, then `sdk`: the errors the SDK reported.
import OpenAI from 'openai';
import { audioTurn, EventQueue, textTurn } from './turns.mjs';
import { options, report, run } from './common.mjs';

const args = options(['transport', 'protocol', 'origin', 'key', 'provider', 'model']);
const beta = args.protocol === 'beta';
const module = await import(`openai/${beta ? 'beta/' : ''}realtime/${args.transport}`);
const Client = args.transport === 'ws' ? module.OpenAIRealtimeWS : module.OpenAIRealtimeWebSocket;

/** Open a client for ?provider=`provider`; resolves once session.created arrived. */
async function connect(provider, model) {
  // The SDK keeps the base URL's query and appends `model`: that is how `provider` gets through.
  const client = new OpenAI({ apiKey: args.key, baseURL: `${args.origin}/v1?provider=${provider}` });
  const rt = new Client({ model }, client);
  const queue = new EventQueue();
  const sdkErrors = [];
  rt.on('event', (event) => queue.push(event));
  rt.on('error', (error) => sdkErrors.push(String(error?.message ?? error)));
  const closed = new Promise((resolve) => {
    const onClose = (code) => {
      queue.close(code);
      resolve(code);
    };
    if (args.transport === 'ws') rt.socket.on('close', onClose);
    else rt.socket.addEventListener('close', (event) => onClose(event.code));
  });
  const created = await queue.next(15000);
  const conn = {
    url: String(rt.url),
    send: (event) => rt.send(event),
    next: (timeoutMs) => queue.next(timeoutMs),
    close: () => {
      rt.close();
      return closed;
    },
    sdkErrors,
    created,
    subprotocol: rt.socket.protocol, // what the gateway answered to the offer, if any
  };
  return conn;
}

run(async () => {
  const conn = await connect(args.provider, args.model);
  report({ step: 'open', url: conn.url, first: conn.created.type, subprotocol: conn.subprotocol });
  report(await textTurn(conn, args.protocol));
  report(await audioTurn(conn, args.protocol));
  await conn.close();
  report({ step: 'sdk', errors: conn.sdkErrors });
});
