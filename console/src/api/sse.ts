// Server-Sent Events read with fetch(): EventSource cannot send an Authorization header, so the
// stream is a plain authenticated GET whose body is parsed here as the SSE format says
// (WHATWG HTML, "Parsing an event stream"), reconnecting with Last-Event-ID after a drop.
import { ApiError, type ApiClient, SignedOutError } from './client';

export interface SseEvent {
  /** "message" unless the event named itself (the edge sends "error" when the stream fails). */
  event: string;
  data: string;
  /** The last id seen on the stream so far (Last-Event-ID to resume). */
  id: string;
}

/** Incremental SSE parser: feed it text as it arrives, get whole events back. */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private eventType = '';
  private sawData = false;
  lastEventId = '';
  /** The server's `retry:` in milliseconds, if it sent one. */
  retryMs: number | undefined;

  feed(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const out: SseEvent[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) break;
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    return out;
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      // Dispatch: an event without any data line is dropped (as EventSource does).
      const ev = this.sawData
        ? { event: this.eventType || 'message', data: this.data.join('\n'), id: this.lastEventId }
        : null;
      this.data = [];
      this.eventType = '';
      this.sawData = false;
      return ev;
    }
    if (line.startsWith(':')) return null; // a comment (the edge's keepalive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        this.sawData = true;
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
    }
    return null;
  }
}

export interface StreamOptions {
  onEvent: (ev: SseEvent) => void;
  /** Connected (true) or waiting to reconnect (false), with the reason. */
  onStatus?: (connected: boolean, why?: string) => void;
  signal: AbortSignal;
  /** First delay before reconnecting; doubles up to 30 s. */
  retryMs?: number;
  lastEventId?: string;
}

/**
 * Reads an SSE route until `signal` aborts, reconnecting after drops with Last-Event-ID so that
 * nothing is missed. Ends (without throwing) when the session has ended.
 */
export async function followStream(
  client: ApiClient,
  path: string,
  opts: StreamOptions,
): Promise<void> {
  let lastEventId = opts.lastEventId ?? '';
  let delay = opts.retryMs ?? 1000;
  while (!opts.signal.aborted) {
    const parser = new SseParser();
    parser.lastEventId = lastEventId;
    let why = 'the stream ended';
    try {
      const res = await client.send('GET', path, {
        signal: opts.signal,
        headers: {
          Accept: 'text/event-stream',
          ...(lastEventId ? { 'Last-Event-ID': lastEventId } : {}),
        },
      });
      if (!res.body) throw new ApiError(res.status, 'the stream has no body');
      opts.onStatus?.(true);
      delay = opts.retryMs ?? 1000;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const stop = () => void reader.cancel().catch(() => {});
      opts.signal.addEventListener('abort', stop, { once: true });
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const ev of parser.feed(value)) {
          lastEventId = ev.id;
          if (ev.event === 'error') {
            why = errorMessage(ev.data);
            continue;
          }
          opts.onEvent(ev);
        }
      }
      opts.signal.removeEventListener('abort', stop);
    } catch (e) {
      if (opts.signal.aborted) return;
      if (e instanceof SignedOutError) {
        opts.onStatus?.(false, e.message);
        return;
      }
      why = (e as Error).message;
    }
    if (opts.signal.aborted) return;
    opts.onStatus?.(false, why);
    await sleep(parser.retryMs ?? delay, opts.signal);
    delay = Math.min(delay * 2, 30_000);
  }
}

function errorMessage(data: string): string {
  try {
    const body = JSON.parse(data) as { message?: string };
    return body.message ?? data;
  } catch {
    return data;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });
}
