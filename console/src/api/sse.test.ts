import { describe, expect, it } from 'vitest';
import { REFRESH_TOKEN_KEY } from './client';
import { SseParser, followStream, type SseEvent } from './sse';
import { fakeApi, json, memoryStorage, session } from '../test/fake';

describe('SseParser', () => {
  const stream =
    ': keepalive\n\n' +
    'id: 41\ndata: {"id":"41","type":"report.completed"}\n\n' +
    'event: error\r\ndata: {"code":14,\r\ndata: "message":"gone"}\r\n\r\n' +
    'retry: 2500\nid: 42\ndata:no space\n\n' +
    'id: 43\n\n' + // no data: not dispatched, but the id counts
    'data: tail';

  it('parses ids, data lines, named events, comments, retry and CRLF', () => {
    const p = new SseParser();
    const events = p.feed(stream);
    expect(events).toEqual([
      { event: 'message', data: '{"id":"41","type":"report.completed"}', id: '41' },
      { event: 'error', data: '{"code":14,\n"message":"gone"}', id: '41' },
      { event: 'message', data: 'no space', id: '42' },
    ]);
    expect(p.retryMs).toBe(2500);
    expect(p.lastEventId).toBe('43');
    // The unfinished event comes once its blank line arrives.
    expect(p.feed('\n\n')).toEqual([{ event: 'message', data: 'tail', id: '43' }]);
  });

  it('gives the same events however the text is split into chunks', () => {
    const whole = new SseParser().feed(stream + '\n\n');
    const p = new SseParser();
    const pieces: SseEvent[] = [];
    for (const ch of stream + '\n\n') pieces.push(...p.feed(ch));
    expect(pieces).toEqual(whole);
    expect(pieces).toHaveLength(4);
  });
});

function sseBody(chunks: string[], end: boolean): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      if (end) c.close();
    },
  });
}

describe('followStream', () => {
  it('sends the session token, delivers events, and after a drop resumes with Last-Event-ID', async () => {
    const storage = memoryStorage({ [REFRESH_TOKEN_KEY]: 'r' });
    let connections = 0;
    const { api, calls } = fakeApi((c) => {
      if (c.url.pathname === '/v1/sessions:refresh') return json(200, session(1));
      connections++;
      if (connections === 1) {
        // Split mid-event, then the connection drops.
        return new Response(sseBody(['id: 7\nda', 'ta: {"id":"7"}\n\n'], true), {
          headers: { 'Content-Type': 'text/event-stream' },
        });
      }
      return new Response(sseBody(['id: 8\ndata: {"id":"8"}\n\n'], false), {
        headers: { 'Content-Type': 'text/event-stream' },
      });
    }, storage);
    const controller = new AbortController();
    const got: string[] = [];
    const statuses: boolean[] = [];
    const done = followStream(api, '/v1/notifications:stream', {
      signal: controller.signal,
      retryMs: 5,
      onStatus: (up) => statuses.push(up),
      onEvent: (ev) => {
        got.push(ev.data);
        if (got.length === 2) controller.abort();
      },
    });
    await done;
    expect(got).toEqual(['{"id":"7"}', '{"id":"8"}']);
    const streams = calls.filter((c) => c.url.pathname === '/v1/notifications:stream');
    expect(streams[0].headers.authorization).toBe('Bearer kurt_session_1');
    expect(streams[0].headers['last-event-id']).toBeUndefined();
    expect(streams[1].headers['last-event-id']).toBe('7');
    expect(statuses).toEqual([true, false, true]);
  });

  it('stops when the session has ended', async () => {
    const storage = memoryStorage({ [REFRESH_TOKEN_KEY]: 'r' });
    const { api } = fakeApi(() => json(401, { message: 'refresh token spent' }), storage);
    const why: (string | undefined)[] = [];
    await followStream(api, '/v1/notifications:stream', {
      signal: new AbortController().signal,
      retryMs: 5,
      onStatus: (_up, w) => why.push(w),
      onEvent: () => {},
    });
    expect(why).toEqual(['your session has ended: refresh token spent']);
  });
});
