// Links from a CSV file: parsed here, sent as one POST /v1/links:batchCreate whose requestId is
// made once per file chosen, so sending the same upload again (after a network error, say)
// creates nothing twice; then what became of each row.
import { useState } from 'preact/hooks';
import { describeError } from '../api/client';
import type { BatchCreateLinksResponse, Link } from '../api/types';
import { ErrorLine, StatusLine } from '../components/ui';
import { useServices } from '../context';
import { CSV_COLUMNS, type CsvLinkRow, linksFromCsv, newRequestId } from '../csv';

interface Upload {
  name: string;
  requestId: string;
  rows: CsvLinkRow[];
}

interface RowResult {
  line: number;
  targetUrl: string;
  link?: Link;
  error?: string;
}

export function CsvUpload({ onCreated }: { onCreated: (links: Link[]) => void }) {
  const { api } = useServices();
  const [upload, setUpload] = useState<Upload | null>(null);
  const [results, setResults] = useState<RowResult[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const send = async (u: Upload) => {
    setBusy(true);
    setError(null);
    try {
      const out = await api.request<BatchCreateLinksResponse>('POST', '/v1/links:batchCreate', {
        body: { requestId: u.requestId, links: u.rows.map((r) => r.link) },
      });
      const byIndex = new Map((out.results ?? []).map((r, i) => [r.index ?? i, r]));
      const shown = u.rows.map((row, i): RowResult => {
        const r = byIndex.get(i);
        return {
          line: row.line,
          targetUrl: row.link.targetUrl,
          link: r?.link,
          error: r?.link ? undefined : (r?.error?.message ?? 'no answer for this row'),
        };
      });
      setResults(shown);
      onCreated(shown.flatMap((r) => (r.link ? [r.link] : [])));
    } catch (err) {
      setError(describeError(`Uploading ${u.name}`, err));
    }
    setBusy(false);
  };

  const choose = async (input: HTMLInputElement) => {
    const file = input.files?.[0];
    setResults(null);
    setError(null);
    setUpload(null);
    if (!file) return;
    let rows: CsvLinkRow[];
    try {
      rows = linksFromCsv(await file.text());
    } catch (err) {
      setError(`${file.name} cannot be read: ${(err as Error).message}`);
      return;
    }
    // A new request id per file chosen: "Send again" reuses it, choosing the file anew does not.
    const u = { name: file.name, requestId: newRequestId(), rows };
    setUpload(u);
    await send(u);
  };

  const created = results?.filter((r) => r.link).length ?? 0;
  return (
    <div class="panel" aria-labelledby="csv-title">
      <h2 id="csv-title">Many links at once</h2>
      <div class="field">
        <label for="csv-file">Create links from a CSV file</label>
        <input
          id="csv-file"
          type="file"
          accept=".csv,text/csv"
          aria-describedby="csv-note"
          disabled={busy}
          onChange={(e) => void choose(e.currentTarget)}
        />
        <small id="csv-note" class="hint">
          A header row ({CSV_COLUMNS.join(',')}; only targetUrl is required), then a link per row, up to 1,000.
        </small>
      </div>
      <ErrorLine error={error} />
      {error && upload && (
        <button type="button" class="secondary" disabled={busy} onClick={() => void send(upload)}>
          Send again
        </button>
      )}
      {results && (
        <>
          <StatusLine>{`${upload?.name}: ${created} of ${results.length} links created`}</StatusLine>
          <table aria-label="CSV upload results">
            <thead>
              <tr>
                <th scope="col">Line</th>
                <th scope="col">Target URL</th>
                <th scope="col">Result</th>
              </tr>
            </thead>
            <tbody>
              {results.map((r) => (
                <tr key={r.line}>
                  <td>{r.line}</td>
                  <td>{r.targetUrl}</td>
                  <td>{r.link ? <a href={r.link.shortUrl}>{r.link.shortUrl}</a> : <span class="error">{r.error}</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}
