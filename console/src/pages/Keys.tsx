// API keys, for programs: create (the secret is shown once), list, revoke.
import { useEffect, useState } from 'preact/hooks';
import { describeError } from '../api/client';
import type { ApiKey, CreateKeyResponse } from '../api/types';
import { ConfirmButton, CopyButton, ErrorLine, Field, PageTitle } from '../components/ui';
import { useServices } from '../context';
import { fmtTime } from '../format';

export function KeysPage() {
  const { api } = useServices();
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [name, setName] = useState('');
  const [secret, setSecret] = useState<CreateKeyResponse | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api
      .request<{ keys?: ApiKey[] }>('GET', '/v1/keys')
      .then((out) => setKeys(out.keys ?? []))
      .catch((e) => setError(describeError('Loading the keys', e)));
  }, []);

  const create = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const out = await api.request<CreateKeyResponse>('POST', '/v1/keys', { body: { name: name.trim() } });
      setSecret(out);
      setKeys((prev) => [out.key, ...prev]);
      setName('');
    } catch (err) {
      setError(describeError('Creating the key', err));
    }
    setBusy(false);
  };

  const revoke = async (k: ApiKey) => {
    setError(null);
    try {
      const done = await api.request<ApiKey>('DELETE', `/v1/keys/${encodeURIComponent(k.id)}`);
      setKeys((prev) => prev.map((p) => (p.id === done.id ? done : p)));
    } catch (err) {
      setError(describeError(`Revoking ${k.name || k.id}`, err));
    }
  };

  return (
    <section>
      <PageTitle>API keys</PageTitle>
      <p>Keys are for programs calling the API (Authorization: Bearer &lt;key&gt;). The console itself signs in with your password.</p>
      <form class="panel" onSubmit={create} aria-labelledby="create-key-title">
        <h2 id="create-key-title">Create a key</h2>
        <Field label="Name" id="key-name" maxLength={200} hint="What it is for, e.g. ci" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <ErrorLine error={error} />
        <button type="submit" disabled={busy}>
          Create key
        </button>
      </form>
      {secret && (
        <div class="panel secret" role="region" aria-labelledby="secret-title">
          <h2 id="secret-title">Your new key</h2>
          <p>Copy it now: it is not stored and will not be shown again.</p>
          <p>
            <code data-testid="new-secret">{secret.secretKey}</code> <CopyButton text={secret.secretKey} label="Copy the new key" />
          </p>
          <button type="button" class="secondary" onClick={() => setSecret(null)}>
            Done
          </button>
        </div>
      )}
      <h2>Your keys</h2>
      {keys.length === 0 && <p>No keys.</p>}
      <table>
        <caption class="visually-hidden">Your API keys</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Key</th>
            <th scope="col">Created</th>
            <th scope="col">State</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => (
            <tr key={k.id} data-key-id={k.id}>
              <td>{k.name || '(unnamed)'}</td>
              <td>
                <code>{k.prefix}…</code>
              </td>
              <td>{fmtTime(k.createTime)}</td>
              <td>{k.revokeTime ? `revoked ${fmtTime(k.revokeTime)}` : 'active'}</td>
              <td>
                {!k.revokeTime && (
                  <ConfirmButton label="Revoke" confirmLabel={`Revoke ${k.name || k.prefix} for good`} onConfirm={() => revoke(k)} />
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
