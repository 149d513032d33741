// The event log: every frame each way, with its time since connecting and its size. A run of the
// same event in the same direction (audio appends, deltas) is folded into one line that counts
// them; the newest lines are kept. Each line opens to show its last event, audio elided.

const KEPT_LINES = 300;
const ELIDED = new Set(['audio', 'delta']);

function elided(event) {
  return JSON.stringify(
    event,
    (name, value) => (ELIDED.has(name) && typeof value === 'string' && value.length > 64 ? `<${value.length} base64 chars>` : value),
    2,
  );
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}

export class EventLog {
  constructor(list) {
    this.list = list;
    this.origin = performance.now();
    this.last = null;
    this.following = true; // keep the newest line in view, until the user scrolls up
    list.addEventListener('scroll', () => {
      this.following = list.scrollTop + list.clientHeight >= list.scrollHeight - 16;
    });
  }

  reset() {
    this.list.replaceChildren();
    this.origin = performance.now();
    this.last = null;
  }

  add(direction, event, size) {
    const type = typeof event.type === 'string' ? event.type : '(no type)';
    const seconds = ((performance.now() - this.origin) / 1000).toFixed(3);
    const last = this.last;
    if (last && last.direction === direction && last.type === type) {
      last.count += 1;
      last.bytes += size;
      last.sizes.add(size);
      last.event = event;
      this.render(last, seconds);
      return;
    }
    const item = document.createElement('li');
    const details = document.createElement('details');
    const summary = document.createElement('summary');
    const body = document.createElement('pre');
    details.append(summary, body);
    item.append(details);
    item.className = direction === 'out' ? 'sent' : 'received';
    const line = { item, summary, body, direction, type, count: 1, bytes: size, sizes: new Set([size]), event, first: seconds };
    details.addEventListener('toggle', () => {
      if (details.open) body.textContent = elided(line.event);
    });
    this.last = line;
    this.list.append(item);
    while (this.list.childElementCount > KEPT_LINES) this.list.firstElementChild.remove();
    this.render(line, seconds);
  }

  render(line, seconds) {
    const { item, summary, direction, type, count, bytes, sizes } = line;
    const arrow = direction === 'out' ? '↑' : '↓';
    const when = count > 1 ? `+${line.first}–${seconds} s` : `+${seconds} s`;
    const size = count > 1 ? `${count} × ${sizes.size === 1 ? formatBytes(bytes / count) : 'various'}, ${formatBytes(bytes)}` : formatBytes(bytes);
    const parts = [
      ['dir', arrow],
      ['type', type],
      ['time', when],
      ['size', size],
    ].map(([name, text]) => Object.assign(document.createElement('span'), { className: name, textContent: text }));
    summary.replaceChildren(...parts);
    summary.setAttribute('aria-label', `${direction === 'out' ? 'sent' : 'received'} ${type}, ${size}, at ${when}`);
    Object.assign(item.dataset, { direction, type, count: String(count), bytes: String(bytes) });
    if (line.body.parentElement.open) line.body.textContent = elided(line.event);
    if (this.following) this.list.scrollTop = this.list.scrollHeight;
  }
}
