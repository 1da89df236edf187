// The console's one way to the API: JSON in and out, the session token on every call, and what
// real networks do handled once here. A 401 refreshes the session once and retries; a failed
// refresh signs the user out (the app then sends them to sign in and back). Errors become an
// ApiError that carries the API's own message and, for 429, when to retry.
import type { Session } from './types';

/** Where the refresh token is kept so that a reload stays signed in (the session token is not). */
export const REFRESH_TOKEN_KEY = 'kurt.refreshToken';
const EMAIL_KEY = 'kurt.email';

export class ApiError extends Error {
  constructor(
    /** HTTP status; 0 when the API could not be reached at all. */
    readonly status: number,
    /** The API's message (its JSON error body), or what went wrong on the way. */
    readonly apiMessage: string,
    /** For 429 (and 503): seconds until a retry may succeed, from Retry-After. */
    readonly retryAfterSeconds?: number,
  ) {
    super(describeStatus(status, apiMessage, retryAfterSeconds));
    this.name = 'ApiError';
  }
}

/** The session ended (refresh refused): the user must sign in again. */
export class SignedOutError extends ApiError {
  constructor(message = 'your session has ended: sign in again') {
    super(401, message);
    this.message = message;
    this.name = 'SignedOutError';
  }
}

function describeStatus(status: number, message: string, retryAfter?: number): string {
  if (status === 0) return message;
  if (status === 429) {
    const when =
      retryAfter !== undefined ? `try again in ${retryAfter} s` : 'try again in a moment';
    return `too many requests: ${when}${message ? ` (${message})` : ''}`;
  }
  return `${message || 'the API answered without a message'} (HTTP ${status})`;
}

/** "Creating the link failed: alias: already taken (HTTP 409)" */
export function describeError(what: string, err: unknown): string {
  const detail = err instanceof Error ? err.message : String(err);
  return `${what} failed: ${detail}`;
}

/** Retry-After is either delay-seconds or an HTTP-date (RFC 9110 10.2.3). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

async function errorFrom(res: Response): Promise<ApiError> {
  let message = '';
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { message?: string; error?: { message?: string } };
    message = body.error?.message ?? body.message ?? '';
  } catch {
    message = text.slice(0, 200).trim();
  }
  if (!message) message = res.statusText;
  return new ApiError(res.status, message, parseRetryAfter(res.headers.get('Retry-After')));
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  signal?: AbortSignal;
  /** false for the public routes (sign-up, sign-in, refresh). */
  auth?: boolean;
  headers?: Record<string, string>;
}

export interface ClientOptions {
  /** Empty: the page's own origin (the CDN, or nginx locally, routes /v1/ to the edge). */
  baseUrl?: string;
  fetch?: typeof fetch;
  storage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;
  locks?: Pick<LockManager, 'request'>;
}

export class ApiClient {
  private sessionToken: string | null = null;
  private refreshing: Promise<void> | null = null;
  private readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;
  private readonly storage: ClientOptions['storage'];
  private readonly locks: ClientOptions['locks'];
  private listeners = new Set<() => void>();
  /** Called when the session ends on its own (refresh refused). */
  onSignedOut: (() => void) | null = null;

  constructor(opts: ClientOptions = {}) {
    this.baseUrl = opts.baseUrl ?? '';
    this.fetchFn = opts.fetch ?? ((...args) => globalThis.fetch(...args));
    this.storage = opts.storage ?? globalThis.localStorage;
    this.locks = opts.locks ?? globalThis.navigator?.locks;
  }

  /** Signed in, or able to become so from the stored refresh token. */
  get signedIn(): boolean {
    return this.sessionToken !== null || this.storage?.getItem(REFRESH_TOKEN_KEY) != null;
  }

  get email(): string {
    return this.storage?.getItem(EMAIL_KEY) ?? '';
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed() {
    for (const fn of this.listeners) fn();
  }

  private adopt(session: Session) {
    this.sessionToken = session.sessionToken;
    this.storage?.setItem(REFRESH_TOKEN_KEY, session.refreshToken);
    if (session.email) this.storage?.setItem(EMAIL_KEY, session.email);
    this.changed();
  }

  /** Forgets the session here (no API call). */
  clear() {
    const was = this.signedIn;
    this.sessionToken = null;
    this.storage?.removeItem(REFRESH_TOKEN_KEY);
    this.storage?.removeItem(EMAIL_KEY);
    if (was) this.changed();
  }

  async signUp(email: string, password: string): Promise<void> {
    const out = await this.request<{ session: Session }>('POST', '/v1/signup', {
      body: { email, password },
      auth: false,
    });
    this.adopt({ email, ...out.session });
  }

  async signIn(email: string, password: string): Promise<void> {
    const session = await this.request<Session>('POST', '/v1/sessions', {
      body: { email, password },
      auth: false,
    });
    this.adopt({ email, ...session });
  }

  /** Signs the session out at the API, then forgets it here whatever the API said. */
  async signOut(): Promise<void> {
    try {
      if (this.sessionToken) {
        await this.fetchFn(`${this.baseUrl}/v1/sessions/current`, {
          method: 'DELETE',
          headers: { Authorization: `Bearer ${this.sessionToken}` },
        });
      }
    } finally {
      this.clear();
    }
  }

  /**
   * Trades the stored refresh token for a new session (both tokens rotate). One refresh at a
   * time, in this tab and across tabs (a Web Lock): presenting a spent refresh token ends the
   * whole session, so a second tab must use the token the first one stored, never its own copy.
   */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      const run = () => this.refreshNow();
      const locked = this.locks
        ? this.locks.request('kurt-session-refresh', run)
        : run();
      this.refreshing = Promise.resolve(locked).finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async refreshNow(): Promise<void> {
    const refreshToken = this.storage?.getItem(REFRESH_TOKEN_KEY);
    if (!refreshToken) {
      this.sessionToken = null;
      this.onSignedOut?.();
      throw new SignedOutError('not signed in');
    }
    let res: Response;
    try {
      res = await this.fetchFn(`${this.baseUrl}/v1/sessions:refresh`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refreshToken }),
      });
    } catch (e) {
      throw new ApiError(0, `could not reach the API (${(e as Error).message})`);
    }
    if (res.ok) {
      this.adopt((await res.json()) as Session);
      return;
    }
    const err = await errorFrom(res);
    // Only a refusal ends the session; a 429 or a 5xx leaves the refresh token for a retry.
    if (res.status === 401 || res.status === 403 || res.status === 400) {
      this.sessionToken = null;
      this.storage?.removeItem(REFRESH_TOKEN_KEY);
      this.changed();
      this.onSignedOut?.();
      throw new SignedOutError(`your session has ended: ${err.apiMessage}`);
    }
    throw err;
  }

  private url(path: string, query?: RequestOptions['query']): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined && v !== '') params.set(k, String(v));
    }
    const qs = params.toString();
    return `${this.baseUrl}${path}${qs ? `?${qs}` : ''}`;
  }

  /**
   * An authenticated request whose response the caller reads (streams, downloads): a 401 refreshes
   * the session once and sends the request again; any other non-2xx throws its ApiError.
   */
  async send(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const auth = opts.auth ?? true;
    if (auth && this.sessionToken === null) await this.refresh();
    const attempt = async (): Promise<Response> => {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
      if (auth && this.sessionToken) headers.Authorization = `Bearer ${this.sessionToken}`;
      try {
        return await this.fetchFn(this.url(path, opts.query), {
          method,
          headers,
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
          signal: opts.signal,
        });
      } catch (e) {
        if ((e as Error).name === 'AbortError') throw e;
        throw new ApiError(0, `could not reach the API (${(e as Error).message})`);
      }
    };
    let res = await attempt();
    if (res.status === 401 && auth) {
      await res.body?.cancel().catch(() => {});
      await this.refresh();
      res = await attempt();
      if (res.status === 401) {
        this.clear();
        this.onSignedOut?.();
        throw new SignedOutError();
      }
    }
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  /** A JSON request; resolves to the parsed response body. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, opts);
    const text = await res.text();
    return (text ? JSON.parse(text) : {}) as T;
  }
}

export const api = new ApiClient();
