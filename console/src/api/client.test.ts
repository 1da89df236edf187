import { describe, expect, it, vi } from 'vitest';
import { ApiError, REFRESH_TOKEN_KEY, SignedOutError, describeError, parseRetryAfter } from './client';
import { fakeApi, json, memoryStorage, session } from '../test/fake';

describe('ApiClient', () => {
  it('keeps the session token in memory and only the refresh token in storage', async () => {
    const { api, storage } = fakeApi(() => json(200, session(1)));
    await api.signIn('ada@example.com', 'correct horse');
    expect(storage.map.get(REFRESH_TOKEN_KEY)).toBe('kurt_refresh_1');
    expect([...storage.map.values()].join(' ')).not.toContain('kurt_session_1');
  });

  it('on a 401 refreshes once (rotating the refresh token) and sends the request again', async () => {
    const storage = memoryStorage();
    // Signed in with session 1, whose session token has expired.
    const s = fakeApi(
      (c) => {
        if (c.url.pathname === '/v1/sessions') return json(200, session(1));
        if (c.url.pathname === '/v1/sessions:refresh') {
          expect(c.body).toEqual({ refreshToken: 'kurt_refresh_1' });
          return json(200, session(2));
        }
        if (c.headers.authorization === 'Bearer kurt_session_2') return json(200, { links: [{ code: 'abc' }] });
        return json(401, { code: 16, message: 'session token expired' });
      },
      storage,
    );
    await s.api.signIn('ada@example.com', 'pw');
    const out = await s.api.request<{ links: { code: string }[] }>('GET', '/v1/links');
    expect(out.links[0].code).toBe('abc');
    const paths = s.calls.map((c) => `${c.method} ${c.url.pathname} ${c.headers.authorization ?? ''}`);
    expect(paths).toEqual([
      'POST /v1/sessions ',
      'GET /v1/links Bearer kurt_session_1',
      'POST /v1/sessions:refresh ',
      'GET /v1/links Bearer kurt_session_2',
    ]);
    expect(storage.map.get(REFRESH_TOKEN_KEY)).toBe('kurt_refresh_2');
  });

  it('refreshes once for many requests that got a 401 together', async () => {
    let refreshes = 0;
    const storage = memoryStorage({ [REFRESH_TOKEN_KEY]: 'kurt_refresh_1' });
    const { api } = fakeApi(async (c) => {
      if (c.url.pathname === '/v1/sessions:refresh') {
        refreshes++;
        await new Promise((r) => setTimeout(r, 10));
        return json(200, session(2));
      }
      return c.headers.authorization === 'Bearer kurt_session_2' ? json(200, { ok: c.url.pathname }) : json(401, { message: 'no' });
    }, storage);
    const out = await Promise.all(['/v1/a', '/v1/b', '/v1/c'].map((p) => api.request<{ ok: string }>('GET', p)));
    expect(out.map((o) => o.ok)).toEqual(['/v1/a', '/v1/b', '/v1/c']);
    // A second refresh with the spent token would end the whole session.
    expect(refreshes).toBe(1);
  });

  it('signs out and calls onSignedOut when the refresh is refused', async () => {
    const storage = memoryStorage({ [REFRESH_TOKEN_KEY]: 'kurt_refresh_1' });
    const { api, calls } = fakeApi((c) => {
      if (c.url.pathname === '/v1/sessions:refresh') return json(401, { code: 16, message: 'refresh token spent' });
      return json(401, { message: 'no' });
    }, storage);
    const onSignedOut = vi.fn();
    api.onSignedOut = onSignedOut;
    const err = (await api.request('GET', '/v1/keys').catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(SignedOutError);
    expect(err.message).toContain('refresh token spent');
    expect(onSignedOut).toHaveBeenCalledTimes(1);
    expect(storage.map.has(REFRESH_TOKEN_KEY)).toBe(false);
    expect(api.signedIn).toBe(false);
    // No session token: the request itself was never sent without one.
    expect(calls.map((c) => c.url.pathname)).toEqual(['/v1/sessions:refresh']);
  });

  it('keeps the refresh token when the refresh fails for another reason (503)', async () => {
    const storage = memoryStorage({ [REFRESH_TOKEN_KEY]: 'kurt_refresh_1' });
    const { api } = fakeApi(() => json(503, { code: 14, message: 'accounts unavailable' }), storage);
    const err = (await api.request('GET', '/v1/keys').catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err).not.toBeInstanceOf(SignedOutError);
    expect(err.message).toBe('accounts unavailable (HTTP 503)');
    expect(storage.map.get(REFRESH_TOKEN_KEY)).toBe('kurt_refresh_1');
  });

  it('says when to retry a 429, from Retry-After', async () => {
    const { api } = fakeApi(() =>
      json(429, { code: 8, message: 'too many failed sign-ins for this address' }, { 'Retry-After': '12' }),
    );
    const err = (await api.signIn('ada@example.com', 'x').catch((e: ApiError) => e)) as ApiError;
    expect(err.status).toBe(429);
    expect(err.retryAfterSeconds).toBe(12);
    expect(describeError('Signing in', err)).toBe(
      'Signing in failed: too many requests: try again in 12 s (too many failed sign-ins for this address)',
    );
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-12-06T15:00:00Z');
    expect(parseRetryAfter('30', now)).toBe(30);
    expect(parseRetryAfter('Sun, 06 Dec 2026 15:01:30 GMT', now)).toBe(90);
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });

  it("gives the API's message and status for a refused request, and names an unreachable API", async () => {
    const storage = memoryStorage({ [REFRESH_TOKEN_KEY]: 'r' });
    let down = false;
    const { api } = fakeApi((c) => {
      if (down) throw new TypeError('Failed to fetch');
      if (c.url.pathname === '/v1/sessions:refresh') return json(200, session(1));
      return json(400, { code: 3, message: 'target_url: not an http or https URL', details: [] });
    }, storage);
    const err = (await api.request('POST', '/v1/links', { body: { targetUrl: 'ftp://x' } }).catch((e: unknown) => e)) as ApiError;
    expect(describeError('Creating the link', err)).toBe(
      'Creating the link failed: target_url: not an http or https URL (HTTP 400)',
    );
    down = true;
    const err2 = (await api.request('GET', '/v1/links').catch((e: unknown) => e)) as ApiError;
    expect(err2.status).toBe(0);
    expect(err2.message).toBe('could not reach the API (Failed to fetch)');
  });

  it('sends query parameters and skips empty ones', async () => {
    const storage = memoryStorage({ [REFRESH_TOKEN_KEY]: 'r' });
    const { api, calls } = fakeApi((c) =>
      c.url.pathname === '/v1/sessions:refresh' ? json(200, session(1)) : json(200, {}),
      storage,
    );
    await api.request('GET', '/v1/links', { query: { pageSize: 50, pageToken: '', query: 'a b' } });
    expect(calls[1].url.search).toBe('?pageSize=50&query=a+b');
  });

  it('signs out at the API and forgets the session', async () => {
    const { api, calls, storage } = fakeApi((c) =>
      c.url.pathname === '/v1/sessions' ? json(200, session(1)) : json(200, {}),
    );
    await api.signIn('ada@example.com', 'pw');
    await api.signOut();
    expect(calls[1].method).toBe('DELETE');
    expect(calls[1].url.pathname).toBe('/v1/sessions/current');
    expect(calls[1].headers.authorization).toBe('Bearer kurt_session_1');
    expect(storage.map.size).toBe(0);
    expect(api.signedIn).toBe(false);
  });
});
