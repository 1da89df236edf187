import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/preact';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REFRESH_TOKEN_KEY } from '../api/client';
import { App } from '../app';
import { ServicesContext } from '../context';
import { type Call, fakeApi, json, memoryStorage, session, sse } from '../test/fake';
import { CsvUpload } from './CsvUpload';
import { CreateLink, LinksPage } from './Links';
import { ReportsPage } from './Reports';
import { WebhookPage } from './Webhook';

const link = (code: string, targetUrl: string) => ({
  code,
  targetUrl,
  shortUrl: `http://127.0.0.1:8080/${code}`,
  createTime: '2026-12-06T10:00:00Z',
});

afterEach(cleanup);
beforeEach(() => {
  window.history.replaceState({}, '', '/');
});

const signedIn = () => memoryStorage({ [REFRESH_TOKEN_KEY]: 'kurt_refresh_0' });
const type = (label: RegExp | string, value: string) =>
  fireEvent.input(screen.getByLabelText(label), { target: { value } });

describe('the link form', () => {
  it('keeps everything typed when the API refuses, and empties only after a success', async () => {
    let refuse = true;
    const { services, calls } = fakeApi((c) => {
      if (c.url.pathname === '/v1/sessions:refresh') return json(200, session(1));
      if (refuse) return json(409, { code: 6, message: 'alias: already taken' });
      return json(200, link('launch', 'https://example.com/launch'));
    }, signedIn());
    const created: string[] = [];
    render(
      <ServicesContext.Provider value={services}>
        <CreateLink onCreated={(l) => created.push(l.code)} />
      </ServicesContext.Provider>,
    );
    type('Target URL', 'https://example.com/launch');
    type('Alias (optional)', 'launch');
    type('Expires (optional)', '2030-01-02T03:04');
    fireEvent.click(screen.getByRole('button', { name: 'Shorten' }));
    expect((await screen.findByRole('alert')).textContent).toBe(
      'Creating the link failed: alias: already taken (HTTP 409)',
    );
    expect((screen.getByLabelText('Target URL') as HTMLInputElement).value).toBe('https://example.com/launch');
    expect((screen.getByLabelText('Alias (optional)') as HTMLInputElement).value).toBe('launch');
    expect((screen.getByLabelText('Expires (optional)') as HTMLInputElement).value).toBe('2030-01-02T03:04');
    const sent = calls.find((c) => c.url.pathname === '/v1/links')!;
    expect(sent.body).toEqual({
      targetUrl: 'https://example.com/launch',
      alias: 'launch',
      expireTime: new Date('2030-01-02T03:04').toISOString(),
    });

    refuse = false;
    fireEvent.click(screen.getByRole('button', { name: 'Shorten' }));
    await waitFor(() => expect(created).toEqual(['launch']));
    expect((screen.getByLabelText('Target URL') as HTMLInputElement).value).toBe('');
    expect(screen.queryByRole('alert')).toBeNull();
  });
});

describe('password-protected links', () => {
  it('sends a password on create, marks protected links, and sets or removes one on edit', async () => {
    const { services, calls } = fakeApi((c) => {
      if (c.url.pathname === '/v1/sessions:refresh') return json(200, session(1));
      if (c.method === 'PATCH') return json(200, { ...link('vault', 'https://example.com/vault') });
      return json(200, {
        links: [{ ...link('vault', 'https://example.com/vault'), passwordProtected: true }, link('open', 'https://example.com/open')],
      });
    }, signedIn());
    render(
      <ServicesContext.Provider value={services}>
        <LinksPage />
      </ServicesContext.Provider>,
    );
    expect(await screen.findByText('vault')).toBeTruthy();
    // One mark, on the protected link's card only.
    expect(screen.getAllByText('Password-protected')).toHaveLength(1);
    expect(screen.getByText('Password-protected').closest('li')!.textContent).toContain('vault');

    type('Target URL', 'https://example.com/new');
    type('Password (optional)', 'open sesame');
    fireEvent.click(screen.getByRole('button', { name: 'Shorten' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'POST' && c.url.pathname === '/v1/links')).toBe(true));
    expect(calls.find((c) => c.method === 'POST' && c.url.pathname === '/v1/links')!.body).toEqual({
      targetUrl: 'https://example.com/new',
      password: 'open sesame',
    });

    fireEvent.click(screen.getByRole('button', { name: 'Edit vault' }));
    fireEvent.click(screen.getByLabelText('Remove the password'));
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'PATCH')).toBe(true));
    expect(calls.find((c) => c.method === 'PATCH')!.body).toEqual({
      targetUrl: 'https://example.com/vault',
      clearPassword: true,
    });
    // The answer says it is open now: the mark goes.
    await waitFor(() => expect(screen.queryByText('Password-protected')).toBeNull());
  });
});

describe('CSV upload', () => {
  const csvFile = (text: string) => new File([text], 'links.csv', { type: 'text/csv' });
  const choose = (file: File) =>
    fireEvent.change(screen.getByLabelText('Create links from a CSV file'), { target: { files: [file] } });

  it('sends the rows as one batchCreate and shows each row’s short URL or error; a retry reuses the requestId', async () => {
    let fail = true;
    const { services, calls } = fakeApi((c) => {
      if (c.url.pathname === '/v1/sessions:refresh') return json(200, session(1));
      if (fail) return json(503, { code: 14, message: 'links is unavailable' });
      return json(200, {
        results: [
          { index: 0, link: link('spring', 'https://example.com/a') },
          { index: 1, error: { code: 3, message: 'target_url: must be an absolute http or https URL' } },
        ],
      });
    }, signedIn());
    const created: string[] = [];
    render(
      <ServicesContext.Provider value={services}>
        <CsvUpload onCreated={(ls) => created.push(...ls.map((l) => l.code))} />
      </ServicesContext.Provider>,
    );
    choose(csvFile('targetUrl,alias\r\nhttps://example.com/a,spring\r\n"not, a url",\r\n'));
    expect((await screen.findByRole('alert')).textContent).toBe(
      'Uploading links.csv failed: links is unavailable (HTTP 503)',
    );
    const first = calls.find((c) => c.url.pathname === '/v1/links:batchCreate')!;
    expect(first.method).toBe('POST');
    const body = first.body as { requestId: string; links: unknown[] };
    expect(body.links).toEqual([{ targetUrl: 'https://example.com/a', alias: 'spring' }, { targetUrl: 'not, a url' }]);
    expect(body.requestId).toMatch(/^[0-9a-f-]{36}$/);

    fail = false;
    fireEvent.click(screen.getByRole('button', { name: 'Send again' }));
    const table = await screen.findByRole('table', { name: 'CSV upload results' });
    const batches = calls.filter((c) => c.url.pathname === '/v1/links:batchCreate');
    expect(batches).toHaveLength(2);
    expect((batches[1].body as { requestId: string }).requestId).toBe(body.requestId);
    const cells = [...table.querySelectorAll('tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent));
    expect(cells).toEqual([
      ['2', 'https://example.com/a', 'http://127.0.0.1:8080/spring'],
      ['3', 'not, a url', 'target_url: must be an absolute http or https URL'],
    ]);
    expect(screen.getByText('links.csv: 1 of 2 links created')).toBeTruthy();
    expect(created).toEqual(['spring']);

    // Choosing a file again is a new upload: a new request id.
    choose(csvFile('targetUrl,alias\r\nhttps://example.com/a,spring\r\n"not, a url",\r\n'));
    await waitFor(() => expect(calls.filter((c) => c.url.pathname === '/v1/links:batchCreate')).toHaveLength(3));
    const third = calls.filter((c) => c.url.pathname === '/v1/links:batchCreate')[2];
    expect((third.body as { requestId: string }).requestId).not.toBe(body.requestId);
  });

  it('says what is wrong with a file it cannot read, and sends nothing', async () => {
    const { services, calls } = fakeApi(() => json(200, session(1)), signedIn());
    render(
      <ServicesContext.Provider value={services}>
        <CsvUpload onCreated={() => {}} />
      </ServicesContext.Provider>,
    );
    choose(csvFile('url,alias\nhttps://example.com/,x\n'));
    expect((await screen.findByRole('alert')).textContent).toContain(
      'links.csv cannot be read: line 1: unknown column "url"',
    );
    expect(calls.filter((c) => c.url.pathname === '/v1/links:batchCreate')).toHaveLength(0);
  });
});

describe('search', () => {
  it('asks the API with query from three characters, and lists everything below that', async () => {
    const { services, calls } = fakeApi((c) => {
      if (c.url.pathname === '/v1/sessions:refresh') return json(200, session(1));
      if (c.url.searchParams.get('query') === 'example.org') {
        return json(200, { links: [link('blog', 'https://example.org/blog')] });
      }
      return json(200, { links: [link('docs', 'https://example.com/docs'), link('blog', 'https://example.org/blog')] });
    }, signedIn());
    render(
      <ServicesContext.Provider value={services}>
        <LinksPage />
      </ServicesContext.Provider>,
    );
    expect(await screen.findByText('docs')).toBeTruthy();
    type('Search links', 'ex');
    expect(await screen.findByText('Type at least 3 characters to search.')).toBeTruthy();
    type('Search links', 'example.org');
    await waitFor(() => expect(screen.queryByText('docs')).toBeNull());
    expect(screen.getByText('blog')).toBeTruthy();
    expect(screen.queryByRole('alert')).toBeNull();
    type('Search links', '');
    expect(await screen.findByText('docs')).toBeTruthy();
    const lists = calls.filter((c) => c.url.pathname === '/v1/links').map((c) => c.url.searchParams.get('query'));
    expect(lists).toEqual([null, 'example.org', null]);
  });
});

describe('redirect rules', () => {
  it('edits a link’s rules in its form, sends them whole, and clears them when none is left', async () => {
    const ruled = {
      ...link('app', 'https://example.com/app'),
      redirectRules: [{ conditions: [{ os: 'ios' }], targetUrl: 'https://apps.apple.com/app/id1' }],
    };
    const { services, calls } = fakeApi((c) => {
      if (c.url.pathname === '/v1/sessions:refresh') return json(200, session(1));
      if (c.method === 'PATCH') {
        const body = c.body as { redirectRules?: unknown[] };
        return json(200, { ...ruled, redirectRules: body.redirectRules });
      }
      return json(200, { links: [ruled] });
    }, signedIn());
    render(
      <ServicesContext.Provider value={services}>
        <LinksPage />
      </ServicesContext.Provider>,
    );
    expect(await screen.findByText(/1 redirect rule$/)).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Edit app' }));
    expect((screen.getByLabelText('Rule 1 condition 1') as HTMLSelectElement).value).toBe('os');
    expect((screen.getByLabelText('Rule 1 condition 1 value') as HTMLSelectElement).value).toBe('ios');
    // A second rule: French speakers in France.
    fireEvent.click(screen.getByRole('button', { name: 'Add a redirect rule' }));
    fireEvent.change(screen.getByLabelText('Rule 2 condition 1'), { target: { value: 'language' } });
    type('Rule 2 condition 1 value', 'fr');
    fireEvent.click(screen.getByRole('button', { name: 'Add a condition to rule 2' }));
    fireEvent.change(screen.getByLabelText('Rule 2 condition 2'), { target: { value: 'country' } });
    type('Rule 2 condition 2 value', 'FR');
    type('Rule 2 target URL', 'https://example.com/fr ');
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect(await screen.findByText(/2 redirect rules$/)).toBeTruthy();
    const patches = () => calls.filter((c) => c.method === 'PATCH');
    expect(patches()[0].body).toEqual({
      targetUrl: 'https://example.com/app',
      redirectRules: [
        { conditions: [{ os: 'ios' }], targetUrl: 'https://apps.apple.com/app/id1' },
        { conditions: [{ language: 'fr' }, { country: 'FR' }], targetUrl: 'https://example.com/fr' },
      ],
    });

    // Every rule removed: the update clears them.
    fireEvent.click(screen.getByRole('button', { name: 'Edit app' }));
    fireEvent.click(screen.getByRole('button', { name: 'Remove rule 2' }));
    fireEvent.click(screen.getByRole('button', { name: 'Remove rule 1' }));
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(patches().length).toBe(2));
    expect(patches()[1].body).toEqual({ targetUrl: 'https://example.com/app', clearRedirectRules: true });
  });
});

describe('reports', () => {
  it('fetches a report again the moment its completion arrives on the live stream', async () => {
    let state = 'RUNNING';
    const report = () => ({
      id: 'r-1',
      kind: 'CLICKS_CSV',
      state,
      startTime: '2026-12-01T00:00:00Z',
      endTime: '2026-12-07T00:00:00Z',
      rowCount: state === 'SUCCEEDED' ? '3' : undefined,
      progressRows: '1',
    });
    const { services, calls } = fakeApi((c: Call) => {
      if (c.url.pathname === '/v1/sessions:refresh') return json(200, session(1));
      if (c.url.pathname === '/v1/reports') return json(200, { reports: [report()] });
      // Its own stream says nothing new here (it ends; the console tries it again later).
      if (c.url.pathname.endsWith(':stream')) return sse([]);
      return json(200, report());
    }, signedIn());
    render(
      <ServicesContext.Provider value={services}>
        <ReportsPage />
      </ServicesContext.Provider>,
    );
    expect((await screen.findByTestId('report-state')).textContent).toBe('RUNNING');
    state = 'SUCCEEDED';
    // What the live stream hands on (LiveNotifications' listeners).
    const live = services.live as unknown as { listeners: Set<(n: unknown) => void> };
    for (const fn of live.listeners)
      fn({ id: '5', type: 'report.completed', message: 'Your report is ready: 3 rows', report: { reportId: 'r-1', state: 'SUCCEEDED' } });
    await waitFor(() => expect(screen.getByTestId('report-state').textContent).toBe('SUCCEEDED'));
    expect(screen.getByRole('status', { name: '' }).textContent).toContain('Live: Your report is ready: 3 rows');
    expect(screen.getByRole('button', { name: 'Download report r-1' })).toBeTruthy();
    expect(calls.some((c) => c.url.pathname === '/v1/reports/r-1')).toBe(true);
  });
});

describe('a running report', () => {
  it('shows the rows scanned and the end as its own stream sends them, and stops following it', async () => {
    const base = {
      id: 'r-2',
      kind: 'CLICKS_CSV',
      startTime: '2026-12-01T00:00:00Z',
      endTime: '2026-12-07T00:00:00Z',
    };
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { services, calls } = fakeApi(async (c: Call) => {
      if (c.url.pathname === '/v1/sessions:refresh') return json(200, session(1));
      if (c.url.pathname === '/v1/reports') return json(200, { reports: [{ ...base, state: 'PENDING' }] });
      if (c.url.pathname === '/v1/reports/r-2:stream') {
        await gate;
        return sse([
          { id: 'r-2', data: { ...base, state: 'RUNNING', progressRows: '4000' } },
          { id: 'r-2', data: { ...base, state: 'SUCCEEDED', progressRows: '9000', rowCount: '9000', sizeBytes: '512' } },
        ]);
      }
      return json(404, { message: 'not found' });
    }, signedIn());
    render(
      <ServicesContext.Provider value={services}>
        <ReportsPage />
      </ServicesContext.Provider>,
    );
    expect((await screen.findByTestId('report-state')).textContent).toBe('PENDING');
    release();
    await waitFor(() => expect(screen.getByTestId('report-state').textContent).toBe('SUCCEEDED'));
    expect(screen.getByText(/9,?000 rows/)).toBeTruthy();
    // Finished: the stream is not opened again, and nothing polls the report.
    await new Promise((r) => setTimeout(r, 50));
    expect(calls.filter((c) => c.url.pathname === '/v1/reports/r-2:stream').length).toBe(1);
    expect(calls.some((c) => c.url.pathname === '/v1/reports/r-2')).toBe(false);
  });
});

describe('the shell', () => {
  it('sends a signed-out visitor to sign in, and back to the page they asked for after', async () => {
    window.history.replaceState({}, '', '/keys');
    const { services } = fakeApi((c) => {
      if (c.url.pathname === '/v1/sessions') return json(200, session(1));
      if (c.url.pathname === '/v1/keys') return json(200, { keys: [{ id: 'key_0123456789abcdef', prefix: 'kurt_abc', name: 'ci' }] });
      return json(404, { message: 'not found' });
    }, memoryStorage());
    render(<App services={services} />);
    await screen.findByRole('heading', { name: 'Sign in' });
    expect(window.location.pathname + window.location.search).toBe('/signin?next=%2Fkeys');
    type('Email', 'ada@example.com');
    type('Password', 'correct horse battery');
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await screen.findByRole('heading', { name: 'API keys' });
    expect(window.location.pathname).toBe('/keys');
    expect(await screen.findByText('ci')).toBeTruthy();
  });

  it('when a refresh is refused mid-session, sends the user to sign in and keeps where they were', async () => {
    window.history.replaceState({}, '', '/webhook');
    const { services } = fakeApi((c) => {
      if (c.url.pathname === '/v1/sessions:refresh') return json(401, { code: 16, message: 'session signed out' });
      return json(401, { message: 'unauthenticated' });
    }, signedIn());
    render(<App services={services} />);
    await screen.findByRole('heading', { name: 'Sign in' });
    expect(window.location.pathname + window.location.search).toBe('/signin?next=%2Fwebhook');
  });

  it('says when to retry a sign-in refused with 429, keeping the email', async () => {
    window.history.replaceState({}, '', '/signin');
    const { services } = fakeApi(() => json(429, { code: 8, message: 'too many failed sign-ins' }, { 'Retry-After': '42' }));
    render(<App services={services} />);
    type('Email', 'ada@example.com');
    type('Password', 'wrong one');
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByRole('alert')).textContent).toBe(
      'Signing in failed: too many requests: try again in 42 s (too many failed sign-ins)',
    );
    expect((screen.getByLabelText('Email') as HTMLInputElement).value).toBe('ada@example.com');
  });
});

describe('the webhook', () => {
  it('keeps a URL typed while the current setting was still loading', async () => {
    let answerGet: (r: Response) => void = () => {};
    const { services, calls } = fakeApi((c) => {
      if (c.url.pathname === '/v1/sessions:refresh') return json(200, session(1));
      if (c.method === 'GET') return new Promise<Response>((resolve) => (answerGet = resolve));
      return json(400, { code: 3, message: 'url: must be http or https' });
    }, signedIn());
    render(
      <ServicesContext.Provider value={services}>
        <WebhookPage />
      </ServicesContext.Provider>,
    );
    await waitFor(() => expect(calls.some((c) => c.method === 'GET')).toBe(true));
    type('Webhook URL', 'ftp://not-http.example.com/');
    answerGet(json(200, { url: 'https://hooks.example.com/old', updateTime: '2026-12-06T10:00:00Z' }));
    await screen.findByRole('button', { name: 'Remove webhook' }); // the setting has loaded
    expect((screen.getByLabelText('Webhook URL') as HTMLInputElement).value).toBe('ftp://not-http.example.com/');
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect((await screen.findByRole('alert')).textContent).toContain('HTTP 400');
    expect(calls.find((c) => c.method === 'PUT')!.body).toEqual({ url: 'ftp://not-http.example.com/' });
  });
});
