// The caller's links: search, create (with alias and expiry, or many from a CSV file), edit (target,
// expiry, redirect rules), delete, copy the short URL.
import { useEffect, useRef, useState } from 'preact/hooks';
import { describeError } from '../api/client';
import type { Link, ListLinksResponse } from '../api/types';
import { ConfirmButton, CopyButton, ErrorLine, Field, PageTitle, StatusLine } from '../components/ui';
import { useServices } from '../context';
import { CsvUpload } from './CsvUpload';
import { fmtTime, fromLocalInput, toLocalInput } from '../format';
import { fromRows, RulesEditor, toRows } from './RedirectRules';

const PAGE_SIZE = 50;

/**
 * ListLinks searches alias, code and target for `query` on the server, from 3 characters (its
 * trigram index needs three; docs/links.md).
 */
export const MIN_QUERY_LENGTH = 3;

export function LinksPage() {
  const { api } = useServices();
  const [links, setLinks] = useState<Link[]>([]);
  const [nextToken, setNextToken] = useState('');
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const [search, setSearch] = useState('');
  const generation = useRef(0);

  const load = async (q: string, pageToken = '') => {
    const mine = ++generation.current;
    setLoading(true);
    setError(null);
    const withQuery = q.trim().length >= MIN_QUERY_LENGTH;
    try {
      const out = await api.request<ListLinksResponse>('GET', '/v1/links', {
        query: { pageSize: PAGE_SIZE, pageToken, query: withQuery ? q.trim() : undefined },
      });
      if (mine !== generation.current) return;
      setLinks((prev) => (pageToken ? [...prev, ...(out.links ?? [])] : (out.links ?? [])));
      setNextToken(out.nextPageToken ?? '');
    } catch (e) {
      if (mine !== generation.current) return;
      setError(describeError('Loading the links', e));
    }
    if (mine === generation.current) setLoading(false);
  };

  // A search is sent 300 ms after the last keystroke; under three characters, all links show.
  const searched = search.trim().length >= MIN_QUERY_LENGTH ? search.trim() : '';
  useEffect(() => {
    const t = setTimeout(() => void load(searched), searched ? 300 : 0);
    return () => clearTimeout(t);
  }, [searched]);
  const shown = links;

  return (
    <section>
      <PageTitle>Links</PageTitle>
      <CreateLink
        onCreated={(link) => {
          setLinks((prev) => [link, ...prev]);
          setNotice(`Created ${link.shortUrl}`);
        }}
      />
      <CsvUpload
        onCreated={(made) => {
          // Newest first, as listed; a retried upload answers links already shown.
          setLinks((prev) => [...made.filter((m) => !prev.some((p) => p.code === m.code)).reverse(), ...prev]);
        }}
      />
      <h2>Your links</h2>
      <div class="field search">
        <label for="link-search">Search links</label>
        <input
          id="link-search"
          type="search"
          value={search}
          aria-describedby="search-note"
          onInput={(e) => setSearch(e.currentTarget.value)}
        />
        <small id="search-note" class="hint">
          {search && !searched
            ? `Type at least ${MIN_QUERY_LENGTH} characters to search.`
            : 'By alias, code or target URL.'}
        </small>
      </div>
      <StatusLine>{notice}</StatusLine>
      <ErrorLine error={error} />
      {!loading && shown.length === 0 && !error && (
        <p>{searched ? 'No link matches.' : 'No links yet: create one above.'}</p>
      )}
      <ul class="cards" aria-label="Links" aria-busy={loading}>
        {shown.map((link) => (
          <LinkItem
            key={link.code}
            link={link}
            onChanged={(l) => setLinks((prev) => prev.map((p) => (p.code === l.code ? l : p)))}
            onDeleted={(code) => {
              setLinks((prev) => prev.filter((p) => p.code !== code));
              setNotice(`Deleted ${code}`);
            }}
          />
        ))}
      </ul>
      {nextToken && (
        <button type="button" class="secondary" disabled={loading} onClick={() => load(searched, nextToken)}>
          Load more
        </button>
      )}
    </section>
  );
}

export function CreateLink({ onCreated }: { onCreated: (l: Link) => void }) {
  const { api } = useServices();
  const [targetUrl, setTargetUrl] = useState('');
  const [alias, setAlias] = useState('');
  const [expiry, setExpiry] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const link = await api.request<Link>('POST', '/v1/links', {
        body: {
          targetUrl: targetUrl.trim(),
          ...(alias.trim() ? { alias: alias.trim() } : {}),
          ...(expiry ? { expireTime: fromLocalInput(expiry) } : {}),
          ...(password ? { password } : {}),
        },
      });
      // Only a success empties the form: on an error everything typed stays.
      setTargetUrl('');
      setAlias('');
      setExpiry('');
      setPassword('');
      onCreated(link);
    } catch (err) {
      setError(describeError('Creating the link', err));
    }
    setBusy(false);
  };

  return (
    <form class="panel" onSubmit={submit} aria-labelledby="create-link-title">
      <h2 id="create-link-title">Shorten a link</h2>
      <div class="row">
        <Field
          label="Target URL"
          id="target-url"
          type="url"
          required
          placeholder="https://example.com/a/page"
          value={targetUrl}
          onInput={(e) => setTargetUrl(e.currentTarget.value)}
        />
        <Field
          label="Alias (optional)"
          id="alias"
          pattern="[A-Za-z0-9_\-]{3,64}"
          hint="3 to 64 letters, digits, - or _"
          value={alias}
          onInput={(e) => setAlias(e.currentTarget.value)}
        />
        <Field
          label="Expires (optional)"
          id="expiry"
          type="datetime-local"
          value={expiry}
          onInput={(e) => setExpiry(e.currentTarget.value)}
        />
        <Field
          label="Password (optional)"
          id="link-password"
          type="password"
          autocomplete="new-password"
          minLength={4}
          maxLength={128}
          hint="Visitors must enter it before they are sent on"
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
      </div>
      <ErrorLine error={error} />
      <button type="submit" disabled={busy}>
        Shorten
      </button>
    </form>
  );
}

function LinkItem({
  link,
  onChanged,
  onDeleted,
}: {
  link: Link;
  onChanged: (l: Link) => void;
  onDeleted: (code: string) => void;
}) {
  const { api } = useServices();
  const [editing, setEditing] = useState(false);
  const [targetUrl, setTargetUrl] = useState(link.targetUrl);
  const [expiry, setExpiry] = useState(toLocalInput(link.expireTime));
  const [rules, setRules] = useState(toRows(link.redirectRules));
  const [password, setPassword] = useState('');
  const [removePassword, setRemovePassword] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = `link-${link.code}`;
  const ruleCount = link.redirectRules?.length ?? 0;

  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body: Record<string, unknown> = { targetUrl: targetUrl.trim() };
      if (expiry) body.expireTime = fromLocalInput(expiry);
      else if (link.expireTime) body.clearExpireTime = true;
      if (rules.length > 0) body.redirectRules = fromRows(rules);
      else if (ruleCount > 0) body.clearRedirectRules = true;
      if (removePassword) body.clearPassword = true;
      else if (password) body.password = password;
      const updated = await api.request<Link>('PATCH', `/v1/links/${encodeURIComponent(link.code)}`, { body });
      onChanged(updated);
      setPassword('');
      setRemovePassword(false);
      setEditing(false);
    } catch (err) {
      setError(describeError(`Saving ${link.code}`, err));
    }
    setBusy(false);
  };

  const remove = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.request('DELETE', `/v1/links/${encodeURIComponent(link.code)}`);
      onDeleted(link.code);
    } catch (err) {
      setError(describeError(`Deleting ${link.code}`, err));
      setBusy(false);
    }
  };

  return (
    <li class="card" aria-labelledby={`${id}-code`}>
      <div class="card-head">
        <a id={`${id}-code`} class="code" href={`/links/${encodeURIComponent(link.code)}`}>
          {link.code}
        </a>
        <a class="short" href={link.shortUrl} target="_blank" rel="noopener noreferrer">
          {link.shortUrl}
        </a>
        <CopyButton text={link.shortUrl} label={`Copy the short URL of ${link.code}`} />
        {link.passwordProtected && (
          <span class="protected" title="Visitors must enter a password before they are sent on">
            Password-protected
          </span>
        )}
      </div>
      {editing ? (
        <form onSubmit={save} aria-label={`Edit ${link.code}`}>
          <div class="row">
            <Field
              label="Target URL"
              id={`${id}-target`}
              type="url"
              required
              value={targetUrl}
              onInput={(e) => setTargetUrl(e.currentTarget.value)}
            />
            <Field
              label="Expires"
              id={`${id}-expiry`}
              type="datetime-local"
              hint="Empty: never expires"
              value={expiry}
              onInput={(e) => setExpiry(e.currentTarget.value)}
            />
            <Field
              label={link.passwordProtected ? 'New password' : 'Password'}
              id={`${id}-password`}
              type="password"
              autocomplete="new-password"
              minLength={4}
              maxLength={128}
              hint={link.passwordProtected ? 'Empty: keep the current one' : 'Empty: none'}
              disabled={removePassword}
              value={password}
              onInput={(e) => setPassword(e.currentTarget.value)}
            />
          </div>
          {link.passwordProtected && (
            <label class="check">
              <input
                type="checkbox"
                checked={removePassword}
                onChange={(e) => setRemovePassword(e.currentTarget.checked)}
              />{' '}
              Remove the password
            </label>
          )}
          <RulesEditor id={id} rows={rules} onChange={setRules} />
          <ErrorLine error={error} />
          <button type="submit" disabled={busy}>
            Save
          </button>{' '}
          <button type="button" class="secondary" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <>
          <p class="target">→ {link.targetUrl}</p>
          <p class="meta">
            Created {fmtTime(link.createTime)}
            {link.expireTime ? ` · expires ${fmtTime(link.expireTime)}` : ' · never expires'}
            {ruleCount > 0 && ` · ${ruleCount} redirect rule${ruleCount > 1 ? 's' : ''}`}
          </p>
          <ErrorLine error={error} />
          <div class="actions">
            <a class="button secondary" href={`/links/${encodeURIComponent(link.code)}`} aria-label={`Stats of ${link.code}`}>
              Stats
            </a>
            <button
              type="button"
              class="secondary"
              aria-label={`Edit ${link.code}`}
              onClick={() => {
                setTargetUrl(link.targetUrl);
                setExpiry(toLocalInput(link.expireTime));
                setRules(toRows(link.redirectRules));
                setPassword('');
                setRemovePassword(false);
                setEditing(true);
              }}
            >
              Edit
            </button>
            <ConfirmButton label="Delete" confirmLabel={`Delete ${link.code} for good`} disabled={busy} onConfirm={remove} />
          </div>
        </>
      )}
    </li>
  );
}
