// A fake of the API for unit tests: each call is recorded; a handler answers it.
import { ApiClient } from '../api/client';
import { LiveNotifications } from '../live';
import type { Services } from '../context';

export interface Call {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: unknown;
}

export type Handler = (call: Call) => Response | Promise<Response>;

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}

/** A text/event-stream response of these events (JSON data, `id:` each), then the end. */
export function sse(events: { id: string; data: unknown }[]): Response {
  const text = events.map((e) => `id: ${e.id}\ndata: ${JSON.stringify(e.data)}\n\n`).join('');
  return new Response(text, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

export function memoryStorage(init: Record<string, string> = {}) {
  const m = new Map(Object.entries(init));
  return {
    getItem: (k: string) => m.get(k) ?? null,
    setItem: (k: string, v: string) => void m.set(k, v),
    removeItem: (k: string) => void m.delete(k),
    map: m,
  };
}

export function fakeApi(handler: Handler, storage = memoryStorage()) {
  const calls: Call[] = [];
  const fetchFn = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    const call: Call = {
      method: init.method ?? 'GET',
      url: new URL(String(input), 'http://console.test'),
      headers,
      body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
    };
    calls.push(call);
    if (init.signal?.aborted) throw new DOMException('aborted', 'AbortError');
    return handler(call);
  }) as typeof fetch;
  const api = new ApiClient({ fetch: fetchFn, storage, locks: undefined });
  const services: Services = { api, live: new LiveNotifications(api) };
  return { api, calls, storage, services };
}

export const session = (n: number) => ({
  sessionToken: `kurt_session_${n}`,
  refreshToken: `kurt_refresh_${n}`,
  accountId: 'acc_1',
  email: 'ada@example.com',
});
