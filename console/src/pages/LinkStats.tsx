// One link's stats: clicks over time, top referrers and agents, refreshed while the page is open.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { describeError } from '../api/client';
import { type Interval, type Link, type LinkStats, num } from '../api/types';
import { ClicksChart } from '../components/ClicksChart';
import { CopyButton, ErrorLine, PageTitle, StatusLine } from '../components/ui';
import { useServices } from '../context';
import { fmtTime } from '../format';

/** How often the stats are fetched again while the page is open and visible. */
export const REFRESH_MS = 5000;

const RANGES: Record<string, { label: string; interval: Interval; hours: number }> = {
  '24h': { label: 'Last 24 hours, by hour', interval: 'HOUR', hours: 24 },
  '7d': { label: 'Last 7 days, by hour', interval: 'HOUR', hours: 24 * 7 },
  '30d': { label: 'Last 30 days, by day', interval: 'DAY', hours: 24 * 30 },
};

export function LinkStatsPage({ code }: { code: string }) {
  const { api } = useServices();
  const [link, setLink] = useState<Link | null>(null);
  const [stats, setStats] = useState<LinkStats | null>(null);
  const [range, setRange] = useState('24h');
  const [error, setError] = useState<string | null>(null);
  const [updated, setUpdated] = useState('');

  useEffect(() => {
    api
      .request<Link>('GET', `/v1/links/${encodeURIComponent(code)}`)
      .then(setLink)
      .catch((e) => setError(describeError(`Loading ${code}`, e)));
  }, [code]);

  useEffect(() => {
    let stopped = false;
    const controller = new AbortController();
    const fetchStats = async () => {
      if (document.visibilityState === 'hidden') return;
      const r = RANGES[range];
      // The end is the next hour (exclusive, rounded up by the API) so that this hour shows.
      const end = new Date(Date.now() + 3600_000);
      const start = new Date(end.getTime() - r.hours * 3600_000);
      try {
        const s = await api.request<LinkStats>('GET', `/v1/links/${encodeURIComponent(code)}/stats`, {
          query: { interval: r.interval, startTime: start.toISOString(), endTime: end.toISOString() },
          signal: controller.signal,
        });
        if (stopped) return;
        setStats(s);
        setError(null);
        setUpdated(new Date().toLocaleTimeString());
      } catch (e) {
        if (!stopped) setError(describeError('Loading the stats', e));
      }
    };
    void fetchStats();
    const timer = setInterval(fetchStats, REFRESH_MS);
    document.addEventListener('visibilitychange', fetchStats);
    return () => {
      stopped = true;
      controller.abort();
      clearInterval(timer);
      document.removeEventListener('visibilitychange', fetchStats);
    };
  }, [code, range]);

  const series = useMemo(() => {
    const points = stats?.series ?? [];
    return {
      times: points.map((p) => Date.parse(p.startTime) / 1000),
      clicks: points.map((p) => num(p.clicks)),
    };
  }, [stats]);
  const total = num(stats?.totalClicks);

  return (
    <section>
      <PageTitle>{`Stats of ${code}`}</PageTitle>
      <p>
        <a href="/">← All links</a>
      </p>
      {link && (
        <p class="target">
          <a href={link.shortUrl} target="_blank" rel="noopener noreferrer">
            {link.shortUrl}
          </a>{' '}
          <CopyButton text={link.shortUrl} label={`Copy the short URL of ${code}`} /> → {link.targetUrl}
        </p>
      )}
      <div class="field inline">
        <label for="range">Range</label>
        <select id="range" value={range} onChange={(e) => setRange(e.currentTarget.value)}>
          {Object.entries(RANGES).map(([k, r]) => (
            <option key={k} value={k}>
              {r.label}
            </option>
          ))}
        </select>
      </div>
      <ErrorLine error={error} />
      <p class="total">
        <strong data-testid="total-clicks">{total}</strong> {total === 1 ? 'click' : 'clicks'} in range
      </p>
      <ClicksChart
        times={series.times}
        clicks={series.clicks}
        label={`Clicks per ${RANGES[range].interval === 'HOUR' ? 'hour' : 'day'}: ${total} in all`}
      />
      <StatusLine>{updated && `Updated at ${updated}; refreshes every ${REFRESH_MS / 1000} s`}</StatusLine>
      <div class="columns">
        <TopTable title="Top referrers" rows={stats?.topReferrers ?? []} />
        <TopTable title="Top agents" rows={stats?.topAgents ?? []} />
      </div>
      {stats?.startTime && (
        <p class="meta">
          From {fmtTime(stats.startTime)} to {fmtTime(stats.endTime)}
        </p>
      )}
    </section>
  );
}

function TopTable({ title, rows }: { title: string; rows: { value: string; clicks?: string | number }[] }) {
  return (
    <table>
      <caption>{title}</caption>
      <thead>
        <tr>
          <th scope="col">{title.replace('Top ', '').replace(/^./, (c) => c.toUpperCase())}</th>
          <th scope="col" class="num">
            Clicks
          </th>
        </tr>
      </thead>
      <tbody>
        {rows.length === 0 ? (
          <tr>
            <td colSpan={2}>None yet</td>
          </tr>
        ) : (
          rows.map((r) => (
            <tr key={r.value}>
              <td>{r.value}</td>
              <td class="num">{num(r.clicks)}</td>
            </tr>
          ))
        )}
      </tbody>
    </table>
  );
}

export default LinkStatsPage;
