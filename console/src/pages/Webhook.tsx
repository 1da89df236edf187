// The webhook: the URL each notification is POSTed to, signed with a secret shown once.
import { useEffect, useState } from 'preact/hooks';
import { describeError } from '../api/client';
import type { Webhook } from '../api/types';
import { CopyButton, ErrorLine, Field, PageTitle, StatusLine } from '../components/ui';
import { useServices } from '../context';
import { fmtTime } from '../format';

export function WebhookPage() {
  const { api } = useServices();
  const [current, setCurrent] = useState<Webhook | null>(null);
  const [url, setUrl] = useState('');
  const [secret, setSecret] = useState('');
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api
      .request<Webhook>('GET', '/v1/webhook')
      .then((w) => {
        setCurrent(w);
        // What was typed while the setting loaded stays.
        setUrl((typed) => typed || (w.url ?? ''));
      })
      .catch((e) => setError(describeError('Loading the webhook', e)));
  }, []);

  const save = async (value: string) => {
    setBusy(true);
    setError(null);
    setNotice('');
    try {
      const w = await api.request<Webhook>('PUT', '/v1/webhook', { body: { url: value } });
      setCurrent(w);
      setUrl(w.url ?? '');
      setSecret(w.secret ?? '');
      setNotice(w.url ? 'Webhook saved.' : 'Webhook removed.');
    } catch (err) {
      setError(describeError(value ? 'Saving the webhook' : 'Removing the webhook', err));
    }
    setBusy(false);
  };

  return (
    <section>
      <PageTitle>Webhook</PageTitle>
      <p>
        Each notification is POSTed as JSON to this URL, signed in the <code>Kurt-Signature</code> header (HMAC-SHA256
        with the secret shown when you save).
      </p>
      <form
        class="panel"
        onSubmit={(e) => {
          e.preventDefault();
          void save(url.trim());
        }}
      >
        <Field
          label="Webhook URL"
          id="webhook-url"
          type="url"
          placeholder="https://hooks.example.com/kurt"
          hint={current?.url ? `Set ${fmtTime(current.updateTime)}` : 'None set'}
          value={url}
          onInput={(e) => setUrl(e.currentTarget.value)}
        />
        <ErrorLine error={error} />
        <button type="submit" disabled={busy || !url.trim()}>
          Save
        </button>{' '}
        {current?.url && (
          <button type="button" class="secondary" disabled={busy} onClick={() => save('')}>
            Remove webhook
          </button>
        )}
      </form>
      <StatusLine>{notice}</StatusLine>
      {secret && (
        <div class="panel secret" role="region" aria-labelledby="whsec-title">
          <h2 id="whsec-title">Signing secret</h2>
          <p>Copy it now: it is shown only once. Saving again makes a new one.</p>
          <p>
            <code>{secret}</code> <CopyButton text={secret} label="Copy the signing secret" />
          </p>
        </div>
      )}
    </section>
  );
}
