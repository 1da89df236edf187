// End to end: the console in a real browser (Debian's Chromium driven by playwright-core) against
// the running system, through the console's own origin (nginx standing in for the CDN): sign up,
// sign out and in, create a link (and more from a CSV file), open its short URL at the edge, see the click in the chart,
// request a report and see its completion arrive live, download it and check its rows, create and
// revoke an API key and see it refused, set the webhook, sign out and see the session refused.
// Every page is screenshotted (KURT_CONSOLE_SCREENSHOTS) and checked by axe-core: a serious or
// critical violation fails the run.
// Needs KURT_CONSOLE_URL (and KURT_EDGE_URL for calls with an API key); run by
// tests/e2e/console_e2e.sh, which starts the system when none is running.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import AxeBuilder from '@axe-core/playwright';
import { chromium } from 'playwright-core';

const CONSOLE = process.env.KURT_CONSOLE_URL;
const EDGE = process.env.KURT_EDGE_URL;
const SHOTS = process.env.KURT_CONSOLE_SCREENSHOTS ?? new URL('../../build/console-screenshots', import.meta.url).pathname;
assert.ok(CONSOLE, 'KURT_CONSOLE_URL is not set');
assert.ok(EDGE, 'KURT_EDGE_URL is not set');
mkdirSync(SHOTS, { recursive: true });

const run = Date.now().toString(36);
const email = `e2e-${run}@example.com`;
const password = `pw-${run}-correct-horse`;
const alias = `e2e-${run}`;
// The target is on this machine (it reaches no other): the console's own origin, where an unknown
// path answers the app's "Not found" page.
const target = `${CONSOLE}/landing/${run}?from=e2e`;
const REFERRER = 'https://news.example.org/a/post';
// A person's Chrome (the headless one's own User-Agent is counted as a bot, rightly).
const VISITOR_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';

let browser;
let context;
let page;
let lastBearer = '';
const axeFindings = [];

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.KURT_CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 900 } });
  page = await context.newPage();
  page.on('request', (req) => {
    const auth = req.headers().authorization;
    if (auth?.startsWith('Bearer ')) lastBearer = auth.slice(7);
  });
});

after(async () => {
  await browser?.close();
});

/** A screenshot and an axe-core check of the page as it is now. */
async function check(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) axeFindings.push(`${name}: ${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help}`), [], `axe on ${name}`);
}

const heading = (name) => page.getByRole('heading', { level: 1, name });

async function apiWithKey(key, path) {
  const res = await fetch(`${EDGE}${path}`, { headers: { Authorization: `Bearer ${key}` } });
  return res.status;
}

async function eventually(what, fn, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('sign up', async () => {
  await page.goto(`${CONSOLE}/`);
  await heading('Sign in').waitFor();
  assert.equal(new URL(page.url()).pathname, '/signin');
  await check('signin');
  await page.getByRole('link', { name: 'Create one' }).click();
  await heading('Create your account').waitFor();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('short');
  await check('signup');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await heading('Links').waitFor();
  await check('links-empty');
});

test('sign out, then sign in (a wrong password is refused, what was typed stays)', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await heading('Sign in').waitFor();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.innerText(), /Signing in failed: .*\(HTTP 401\)/);
  assert.equal(await page.getByLabel('Email').inputValue(), email);
  await check('signin-refused');
  await page.getByLabel('Password').fill(password);
  await page.getByLabel('Password').press('Enter');
  await heading('Links').waitFor();
});

test('a reload stays signed in (the refresh token in localStorage)', async () => {
  await page.reload();
  await heading('Links').waitFor();
});

let shortUrl = '';
test('create a link with an alias, by keyboard alone', async () => {
  // The page's heading has the focus (for screen readers); Tab goes on to the form.
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'H1');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'target-url');
  await page.keyboard.type(target);
  await page.keyboard.press('Tab');
  await page.keyboard.type(alias);
  await page.keyboard.press('Enter');
  const card = page.getByRole('listitem').filter({ has: page.getByRole('link', { name: alias, exact: true }) });
  await card.waitFor();
  shortUrl = await card.locator('a.short').innerText();
  assert.ok(shortUrl.endsWith(`/${alias}`), shortUrl);
  // The same alias again: refused, the form keeps what was typed.
  await page.getByLabel('Target URL').fill(target);
  await page.getByLabel('Alias (optional)').fill(alias);
  await page.getByRole('button', { name: 'Shorten' }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /Creating the link failed: .*HTTP 409/);
  assert.equal(await page.getByLabel('Alias (optional)').inputValue(), alias);
  await check('links');
});

test('search the links on the server', async () => {
  const item = page.getByRole('listitem').filter({ has: page.getByRole('link', { name: alias, exact: true }) });
  // Part of the alias, in other case: the server finds it.
  await page.getByLabel('Search links').fill(alias.slice(4).toUpperCase());
  await page.waitForResponse((r) => new URL(r.url()).searchParams.get('query') === alias.slice(4).toUpperCase());
  await item.waitFor();
  await page.getByLabel('Search links').fill('no-such-link-anywhere');
  await page.getByText('No link matches.').waitFor();
  assert.equal(await item.count(), 0);
  await check('links-search');
  await page.getByLabel('Search links').fill('');
  await item.waitFor();
});

test('create links from a CSV file: one batch, a result per row', async () => {
  const csv = `targetUrl,alias,expireTime\r\n${target}&row=1,${alias}-csv,\r\n"ftp://not-http.example/, bad",,\r\n${target}&row=3,,2099-01-01T00:00:00Z\r\n`;
  const batch = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/links:batchCreate');
  await page.getByLabel('Create links from a CSV file').setInputFiles({ name: 'links.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  assert.equal((await batch).status(), 200);
  const table = page.getByRole('table', { name: 'CSV upload results' });
  await table.waitFor();
  const rows = await table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.innerText)));
  assert.equal(rows.length, 3);
  assert.deepEqual(rows.map((r) => r[0]), ['2', '3', '4']);
  assert.ok(rows[0][2].endsWith(`/${alias}-csv`), rows[0][2]);
  assert.match(rows[1][2], /^target_url: /);
  assert.match(rows[2][2], /^https?:\/\/.+\/[A-Za-z0-9]{7}$/);
  await page.getByText('links.csv: 2 of 3 links created').waitFor();
  await page.getByRole('listitem').filter({ has: page.getByRole('link', { name: `${alias}-csv`, exact: true }) }).waitFor();
  await check('links-csv');
});

test('open the short URL: the edge redirects to the target', async () => {
  // Someone else, in a browser of their own, following the link from a page elsewhere.
  const visitorContext = await browser.newContext({ userAgent: VISITOR_UA });
  const visitor = await visitorContext.newPage();
  const res = await visitor.goto(shortUrl, { referer: REFERRER });
  assert.equal(visitor.url(), target);
  assert.equal(res.status(), 200);
  const redirect = res.request().redirectedFrom();
  assert.ok(redirect, 'no redirect');
  assert.equal(redirect.url(), shortUrl);
  assert.equal((await redirect.response()).status(), 302);
  await visitorContext.close();
});

test('the click appears in the stats chart', async () => {
  await page.getByRole('link', { name: alias, exact: true }).click();
  await heading(`Stats of ${alias}`).waitFor();
  // The page refreshes itself every 5 s; the click goes through Kafka to analytics first.
  await page.getByTestId('total-clicks').filter({ hasText: /^1$/ }).waitFor({ timeout: 60_000 });
  assert.equal(await page.locator('.chart canvas').count(), 1);
  // The chart plots the series the API returned: the click is in one of its buckets.
  await page.locator('.chart[data-plotted-clicks="1"]').waitFor();
  const agents = page.getByRole('table', { name: 'Top agents' });
  await agents.getByRole('cell', { name: 'Chrome', exact: true }).waitFor();
  const referrers = page.getByRole('table', { name: 'Top referrers' });
  await referrers.getByRole('cell', { name: 'news.example.org', exact: true }).waitFor();
  assert.match(await page.locator('.chart').getAttribute('aria-label'), /1 in all/);
  await check('stats');
});

let reportRows = [];
test('request a report, see it complete live, download it', async () => {
  await page.getByRole('link', { name: 'Reports' }).click();
  await heading('Reports').waitFor();
  await page.getByLabel('Kind').selectOption('CLICKS_CSV');
  // The new report follows its own stream (state and rows scanned) until it has finished.
  const followed = page.waitForResponse(
    (r) => /\/v1\/reports\/[0-9a-f-]+:stream$/.test(new URL(r.url()).pathname) && r.status() === 200,
  );
  await page.getByRole('button', { name: 'Request report' }).click();
  const card = page.locator('li[data-report-id]').first();
  await card.waitFor();
  await followed;
  // The completion arrives on the notification stream (SSE), which announces it.
  await page.locator('#report-live').filter({ hasText: /^Live: / }).waitFor({ timeout: 60_000 });
  await card.getByTestId('report-state').filter({ hasText: 'SUCCEEDED' }).waitFor();
  await check('reports');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    card.getByRole('button', { name: /^Download report/ }).click(),
  ]);
  const csv = readFileSync(await download.path(), 'utf8');
  const lines = csv.trim().split('\n');
  assert.equal(lines[0], 'code,click_time,referrer,user_agent,client_hash,event_id,bot,country');
  // The first field is the code, quoted or not (RFC 4180 lets a writer quote any field).
  reportRows = lines.slice(1).filter((l) => l.split(',')[0].replace(/^"(.*)"$/, '$1') === alias);
  assert.equal(reportRows.length, 1, csv);
  assert.ok(reportRows[0].includes('Chrome/156.0.0.0'), reportRows[0]);
  assert.ok(reportRows[0].includes('news.example.org'), reportRows[0]);
  // A person's click (not a bot's), from a loopback address, which has no country.
  assert.match(reportRows[0], /,false,(""|)$/);
});

test('the notification is listed, live', async () => {
  await page.getByRole('link', { name: /^Notifications/ }).click();
  await heading('Notifications').waitFor();
  await page.getByRole('status').filter({ hasText: 'Stream: live' }).waitFor();
  assert.ok((await page.locator('.cards .card').count()) >= 1);
  await check('notifications');
});

test('create an API key, use it, revoke it, see it refused', async () => {
  await page.getByRole('link', { name: 'API keys' }).click();
  await heading('API keys').waitFor();
  await page.getByLabel('Name').fill(`key-${run}`);
  await page.getByRole('button', { name: 'Create key' }).click();
  const secret = await page.getByTestId('new-secret').innerText();
  assert.match(secret, /^kurt_/);
  assert.equal(await apiWithKey(secret, '/v1/links'), 200);
  await check('keys-created');
  const row = page.locator('tr', { hasText: `key-${run}` });
  await row.getByRole('button', { name: 'Revoke' }).click();
  await row.getByRole('button', { name: /^Revoke .* for good$/ }).click();
  await row.getByRole('cell', { name: /^revoked/ }).waitFor();
  // The edge may keep an answer of accounts for a few seconds (its authentication cache).
  await eventually('the revoked key refused', async () => (await apiWithKey(secret, '/v1/links')) === 401, 15_000);
  await check('keys-revoked');
});

test('the webhook setting', async () => {
  await page.getByRole('link', { name: 'Webhook' }).click();
  await heading('Webhook').waitFor();
  await page.getByLabel('Webhook URL').fill('ftp://not-http.example.com/');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /Saving the webhook failed: .*HTTP 400/);
  assert.equal(await page.getByLabel('Webhook URL').inputValue(), 'ftp://not-http.example.com/');
  await check('webhook');
});

test('an unknown path answers the app, which says not found', async () => {
  await page.goto(`${CONSOLE}/no/such/page`);
  await heading('Not found').waitFor();
  await check('not-found');
});

test('sign out: the session is refused afterwards', async () => {
  await page.goto(`${CONSOLE}/`);
  await heading('Links').waitFor();
  const token = lastBearer;
  assert.match(token, /^kurt_/);
  assert.equal(await apiWithKey(token, '/v1/links'), 200);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await heading('Sign in').waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('kurt.refreshToken')), null);
  await eventually('the signed-out session token refused', async () => (await apiWithKey(token, '/v1/links')) === 401, 15_000);
  // A page that needs a session sends the user to sign in, and back after.
  await page.goto(`${CONSOLE}/reports`);
  await heading('Sign in').waitFor();
  assert.equal(new URL(page.url()).search, '?next=%2Freports');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await heading('Reports').waitFor();
});

test('axe found no serious or critical violation', () => {
  assert.deepEqual(axeFindings, []);
});
