// What each endpoint's protocol means to the page: the events it sends, and a reader that turns each
// server event into one of a few happenings the page acts on. The rest of the page never looks at
// event types; a new endpoint is one more entry here.
//
// Happenings: ready {id, model} · speech-started · speech-stopped {audioMs} · user-audio {itemId} ·
// user-transcript {itemId, delta | text} · response-started · assistant-audio {itemId, audio} ·
// assistant-text {itemId, delta} · response-done {status, usage} · truncated {itemId, audioMs} ·
// error {code, message}.

const TRANSCRIPTION_MODEL = 'gpt-4o-mini-transcribe';
const PCM = { type: 'audio/pcm', rate: 24000 };

/** The OpenAI Realtime protocol, GA interface (`/v1/realtime`). */
export const REALTIME = {
  path: '/v1/realtime',
  typing: true,
  pushToTalk: true,
  query: ({ provider, model }) => ({ provider, model }),
  // Nothing to send before the provider's session.created.
  opening: () => [],
  configure: ({ turns }) => [
    {
      type: 'session.update',
      session: {
        type: 'realtime',
        audio: {
          input: {
            format: PCM,
            transcription: { model: TRANSCRIPTION_MODEL },
            turn_detection: turns === 'server_vad' ? { type: 'server_vad' } : null,
          },
          output: { format: PCM },
        },
      },
    },
  ],
  append: (audio) => ({ type: 'input_audio_buffer.append', audio }),
  startTalking: () => [{ type: 'input_audio_buffer.clear' }],
  stopTalking: () => [{ type: 'input_audio_buffer.commit' }, { type: 'response.create' }],
  // A typed message gets a typed reply.
  say: (text) => [
    { type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } },
    { type: 'response.create', response: { output_modalities: ['text'] } },
  ],
  cancel: () => [{ type: 'response.cancel' }],
  truncate: (itemId, audioMs) => [
    { type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: audioMs },
  ],
  reader: () => (event) => REALTIME_EVENTS[event.type]?.(event) ?? null,
};

const REALTIME_EVENTS = {
  'session.created': ({ session }) => ({ kind: 'ready', id: session?.id, model: session?.model }),
  'input_audio_buffer.speech_started': () => ({ kind: 'speech-started' }),
  'input_audio_buffer.speech_stopped': (e) => ({ kind: 'speech-stopped', audioMs: e.audio_end_ms }),
  'input_audio_buffer.committed': (e) => ({ kind: 'user-audio', itemId: e.item_id }),
  'conversation.item.input_audio_transcription.delta': (e) => ({ kind: 'user-transcript', itemId: e.item_id, delta: e.delta }),
  'conversation.item.input_audio_transcription.completed': (e) => ({ kind: 'user-transcript', itemId: e.item_id, text: e.transcript }),
  'response.created': () => ({ kind: 'response-started' }),
  'response.output_audio.delta': (e) => ({ kind: 'assistant-audio', itemId: e.item_id, audio: e.delta }),
  'response.output_audio_transcript.delta': (e) => ({ kind: 'assistant-text', itemId: e.item_id, delta: e.delta }),
  'response.output_text.delta': (e) => ({ kind: 'assistant-text', itemId: e.item_id, delta: e.delta }),
  'response.done': ({ response }) => ({ kind: 'response-done', status: response?.status, usage: response?.usage }),
  'conversation.item.truncated': (e) => ({ kind: 'truncated', itemId: e.item_id, audioMs: e.audio_end_ms }),
  error: ({ error }) => ({ kind: 'error', code: error?.code, message: error?.message }),
};

/**
 * GPT-Live (`/v1/live/sessions`): the session starts with `session.start`, audio flows both ways
 * and the service decides the turns; it takes no typed messages. Its events carry no item ids,
 * so the reader numbers the turns itself: a new one each time the speaker changes.
 */
export const LIVE = {
  path: '/v1/live/sessions',
  typing: false,
  pushToTalk: false,
  query: ({ provider }) => ({ provider }),
  opening: ({ model }) => [{ type: 'session.start', session: { model } }],
  configure: () => [],
  append: (audio) => ({ type: 'session.input_audio.append', audio }),
  startTalking: () => [],
  stopTalking: () => [],
  say: () => [],
  cancel: () => [],
  truncate: () => [],
  reader: () => {
    let turn = 0;
    let speaker = null;
    const itemOf = (who) => {
      if (speaker !== who) [speaker, turn] = [who, turn + 1];
      return `live-${who}-${turn}`;
    };
    const events = {
      'session.started': ({ session }) => ({ kind: 'ready', id: session?.id, model: session?.model }),
      'session.input_transcript.delta': (e) => ({ kind: 'user-transcript', itemId: itemOf('user'), delta: e.delta }),
      'session.output_transcript.delta': (e) => ({ kind: 'assistant-text', itemId: itemOf('assistant'), delta: e.delta }),
      'session.output_audio.delta': (e) => ({ kind: 'assistant-audio', itemId: itemOf('assistant'), audio: e.delta }),
      error: ({ error }) => ({ kind: 'error', code: error?.code, message: error?.message }),
    };
    return (event) => events[event.type]?.(event) ?? null;
  },
};

export const PROTOCOLS = { [REALTIME.path]: REALTIME, [LIVE.path]: LIVE };
