// Notifications: the stored ones, and new ones as they arrive on the live stream.
import { useEffect, useState } from 'preact/hooks';
import { describeError } from '../api/client';
import type { ListNotificationsResponse, Notification } from '../api/types';
import { ErrorLine, PageTitle, StatusLine } from '../components/ui';
import { useServices } from '../context';
import { fmtTime } from '../format';

export function mergeNotifications(live: Notification[], stored: Notification[]): Notification[] {
  const seen = new Set<string>();
  const out: Notification[] = [];
  for (const n of [...live, ...stored]) {
    if (seen.has(n.id)) continue;
    seen.add(n.id);
    out.push(n);
  }
  // Ids increase per account: newest first.
  return out.sort((a, b) => Number(b.id) - Number(a.id));
}

export function NotificationsPage() {
  const { api, live } = useServices();
  const [stored, setStored] = useState<Notification[]>([]);
  const [, setTick] = useState(0);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api
      .request<ListNotificationsResponse>('GET', '/v1/notifications', { query: { pageSize: 50 } })
      .then((out) => setStored(out.notifications ?? []))
      .catch((e) => setError(describeError('Loading the notifications', e)));
    return live.subscribe(() => setTick((t) => t + 1));
  }, []);

  const ack = async (n: Notification) => {
    setError(null);
    try {
      const done = await api.request<Notification>('POST', `/v1/notifications/${encodeURIComponent(n.id)}:ack`, { body: {} });
      setStored((prev) => mergeNotifications([done], prev));
      live.received = live.received.map((r) => (r.id === done.id ? done : r));
    } catch (e) {
      setError(describeError('Marking the notification read', e));
    }
  };

  const all = mergeNotifications(live.received, stored);
  return (
    <section>
      <PageTitle>Notifications</PageTitle>
      <StatusLine>
        <span class={live.connected ? 'dot on' : 'dot'} aria-hidden="true" /> Stream: {live.status}
      </StatusLine>
      <ErrorLine error={error} />
      {all.length === 0 && <p>No notifications yet. A finished report tells you here, as it happens.</p>}
      <ul class="cards" aria-label="Notifications" aria-live="polite">
        {all.map((n) => (
          <li class={`card ${n.ackTime ? 'read' : 'unread'}`} key={n.id}>
            <p>
              <strong>{n.message ?? n.type}</strong>
            </p>
            <p class="meta">
              {fmtTime(n.createTime)} · {n.ackTime ? 'read' : 'new'}
              {n.report?.reportId && (
                <>
                  {' · '}
                  <a href="/reports">Reports</a>
                </>
              )}
            </p>
            {!n.ackTime && (
              <button type="button" class="secondary" onClick={() => ack(n)} aria-label={`Mark notification ${n.id} read`}>
                Mark read
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
