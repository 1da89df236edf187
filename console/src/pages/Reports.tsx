// Reports: request one, watch its progress and completion live (the report's own SSE stream,
// GET /v1/reports/{id}:stream, and the notification stream), download it, cancel it.
import { useEffect, useRef, useState } from 'preact/hooks';
import { describeError } from '../api/client';
import { followStream } from '../api/sse';
import { type ListReportsResponse, type Report, type ReportKind, num } from '../api/types';
import { ErrorLine, Field, PageTitle, StatusLine } from '../components/ui';
import { useServices } from '../context';
import { fmtBytes, fmtTime, fromLocalInput, toLocalInput } from '../format';

const ACTIVE = new Set(['PENDING', 'RUNNING']);
export const POLL_MS = 2000;
/**
 * Reports followed on their own stream at once: the newest active ones. A browser keeps about six
 * HTTP/1.1 connections per origin, one is the notification stream's, and API calls need the rest;
 * further active reports are polled every POLL_MS instead.
 */
export const MAX_REPORT_STREAMS = 2;

/** The file name of a download: the API's Content-Disposition, else one made from the report. */
export function fileNameOf(res: Response, report: Report): string {
  const cd = res.headers.get('Content-Disposition') ?? '';
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  if (m) return decodeURIComponent(m[1]);
  return `report-${report.id}.${report.kind === 'CLICKS_CSV' ? 'csv' : 'json'}`;
}

export function ReportsPage() {
  const { api, live } = useServices();
  const [reports, setReports] = useState<Report[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [announce, setAnnounce] = useState('');
  const reportsRef = useRef(reports);
  reportsRef.current = reports;
  // The reports on a stream of their own, by id.
  const streams = useRef(new Map<string, AbortController>());

  const upsert = (r: Report) =>
    setReports((prev) => (prev.some((p) => p.id === r.id) ? prev.map((p) => (p.id === r.id ? r : p)) : [r, ...prev]));

  const refreshOne = async (id: string) => {
    try {
      upsert(await api.request<Report>('GET', `/v1/reports/${encodeURIComponent(id)}`));
    } catch (e) {
      setError(describeError('Loading the report', e));
    }
  };

  useEffect(() => {
    api
      .request<ListReportsResponse>('GET', '/v1/reports', { query: { pageSize: 50 } })
      .then((out) => setReports(out.reports ?? []))
      .catch((e) => setError(describeError('Loading the reports', e)));
    // Completion arrives on the live stream: the report is fetched again at once.
    const off = live.onNotification((n) => {
      if (!n.report?.reportId) return;
      setAnnounce(`Live: ${n.message ?? `report ${n.report.reportId} ${n.report.state ?? 'finished'}`}`);
      void refreshOne(n.report.reportId);
    });
    // Active reports beyond those on a stream of their own are polled.
    const timer = setInterval(() => {
      for (const r of reportsRef.current) {
        if (ACTIVE.has(r.state) && !streams.current.has(r.id)) void refreshOne(r.id);
      }
    }, POLL_MS);
    return () => {
      off();
      clearInterval(timer);
      for (const c of streams.current.values()) c.abort();
      streams.current.clear();
    };
  }, []);

  // The newest active reports follow their own stream: each change (state, rows scanned) as the
  // server sees it, until the report has finished and the server ends the stream.
  useEffect(() => {
    const wanted = new Set(
      reports.filter((r) => ACTIVE.has(r.state)).slice(0, MAX_REPORT_STREAMS).map((r) => r.id),
    );
    for (const [id, controller] of streams.current) {
      if (!wanted.has(id)) {
        controller.abort();
        streams.current.delete(id);
      }
    }
    for (const id of wanted) {
      if (streams.current.has(id)) continue;
      const controller = new AbortController();
      streams.current.set(id, controller);
      void followStream(api, `/v1/reports/${encodeURIComponent(id)}:stream`, {
        signal: controller.signal,
        onEvent: (ev) => {
          let r: Report;
          try {
            r = JSON.parse(ev.data) as Report;
          } catch {
            return;
          }
          upsert(r);
          if (!ACTIVE.has(r.state)) controller.abort();
        },
      });
    }
  }, [reports]);

  const cancel = async (r: Report) => {
    setError(null);
    try {
      upsert(await api.request<Report>('POST', `/v1/reports/${encodeURIComponent(r.id)}:cancel`, { body: {} }));
    } catch (e) {
      setError(describeError('Cancelling the report', e));
    }
  };

  const download = async (r: Report) => {
    setError(null);
    try {
      const res = await api.send('GET', `/v1/reports/${encodeURIComponent(r.id)}/content`);
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = fileNameOf(res, r);
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (e) {
      setError(describeError('Downloading the report', e));
    }
  };

  return (
    <section>
      <PageTitle>Reports</PageTitle>
      <RequestReport onCreated={upsert} />
      <h2>Your reports</h2>
      <StatusLine id="report-live">{announce}</StatusLine>
      <ErrorLine error={error} />
      {reports.length === 0 && <p>No reports yet.</p>}
      <ul class="cards" aria-label="Reports">
        {reports.map((r) => (
          <li class="card" key={r.id} data-report-id={r.id} aria-label={`Report ${r.id}`}>
            <div class="card-head">
              <strong>{r.kind === 'CLICKS_CSV' ? 'Clicks (CSV)' : 'Summary (JSON)'}</strong>
              <span class={`state state-${r.state.toLowerCase()}`} data-testid="report-state">
                {r.state}
              </span>
              {r.code && <span>link {r.code}</span>}
            </div>
            <p class="meta">
              {fmtTime(r.startTime)} to {fmtTime(r.endTime)} · requested {fmtTime(r.createTime)}
            </p>
            {ACTIVE.has(r.state) && (
              <p>
                <label for={`progress-${r.id}`}>Rows scanned: {num(r.progressRows)}</label>{' '}
                <progress id={`progress-${r.id}`} aria-label={`Progress of report ${r.id}`} />
              </p>
            )}
            {r.state === 'SUCCEEDED' && (
              <p>
                {num(r.rowCount)} {num(r.rowCount) === 1 ? 'row' : 'rows'}, {fmtBytes(num(r.sizeBytes))}
              </p>
            )}
            {r.error && <p class="error">{r.error}</p>}
            <div class="actions">
              {r.state === 'SUCCEEDED' && (
                <button type="button" onClick={() => download(r)} aria-label={`Download report ${r.id}`}>
                  Download
                </button>
              )}
              {ACTIVE.has(r.state) && (
                <button type="button" class="secondary" onClick={() => cancel(r)} aria-label={`Cancel report ${r.id}`}>
                  Cancel
                </button>
              )}
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}

function RequestReport({ onCreated }: { onCreated: (r: Report) => void }) {
  const { api } = useServices();
  const [kind, setKind] = useState<ReportKind>('CLICKS_CSV');
  const [start, setStart] = useState(() => toLocalInput(new Date(Date.now() - 7 * 86400_000).toISOString()));
  const [end, setEnd] = useState(() => toLocalInput(new Date(Date.now() + 3600_000).toISOString()));
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // One idempotency key per form content: sending the same form again after a network error
  // returns the report the first attempt may have created instead of starting another.
  const requestId = useRef(crypto.randomUUID());
  const touch = () => {
    requestId.current = crypto.randomUUID();
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const report = await api.request<Report>('POST', '/v1/reports', {
        body: {
          kind,
          startTime: fromLocalInput(start),
          endTime: fromLocalInput(end),
          ...(code.trim() ? { code: code.trim() } : {}),
          requestId: requestId.current,
        },
      });
      touch();
      onCreated(report);
    } catch (err) {
      setError(describeError('Requesting the report', err));
    }
    setBusy(false);
  };

  return (
    <form class="panel" onSubmit={submit} aria-labelledby="request-report-title">
      <h2 id="request-report-title">Request a report</h2>
      <div class="row">
        <div class="field">
          <label for="report-kind">Kind</label>
          <select
            id="report-kind"
            value={kind}
            onChange={(e) => {
              setKind(e.currentTarget.value as ReportKind);
              touch();
            }}
          >
            <option value="CLICKS_CSV">Every click (CSV)</option>
            <option value="SUMMARY_JSON">Summary (JSON)</option>
          </select>
        </div>
        <Field label="From" id="report-start" type="datetime-local" required value={start} onInput={(e) => { setStart(e.currentTarget.value); touch(); }} />
        <Field label="To" id="report-end" type="datetime-local" required value={end} onInput={(e) => { setEnd(e.currentTarget.value); touch(); }} />
        <Field label="Only the link (optional)" id="report-code" hint="A code; empty: all your links" value={code} onInput={(e) => { setCode(e.currentTarget.value); touch(); }} />
      </div>
      <ErrorLine error={error} />
      <button type="submit" disabled={busy}>
        Request report
      </button>
    </form>
  );
}
