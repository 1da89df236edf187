// The signed-in user's notifications as they arrive: one SSE stream for the whole console
// (GET /v1/notifications:stream), shared by the pages that show them (notifications, reports).
import type { ApiClient } from './api/client';
import { followStream } from './api/sse';
import type { Notification } from './api/types';

export type LiveListener = (n: Notification) => void;

export class LiveNotifications {
  /** Received on this stream since it started, newest first. */
  received: Notification[] = [];
  connected = false;
  status = 'not connected';
  private controller: AbortController | null = null;
  private listeners = new Set<LiveListener>();
  private statusListeners = new Set<() => void>();

  constructor(private readonly client: ApiClient) {}

  start() {
    if (this.controller) return;
    const controller = new AbortController();
    this.controller = controller;
    void followStream(this.client, '/v1/notifications:stream', {
      signal: controller.signal,
      onStatus: (connected, why) => {
        this.connected = connected;
        this.status = connected ? 'live' : `reconnecting: ${why ?? ''}`;
        this.emitStatus();
      },
      onEvent: (ev) => {
        let n: Notification;
        try {
          n = JSON.parse(ev.data) as Notification;
        } catch {
          return;
        }
        if (this.received.some((r) => r.id === n.id)) return;
        this.received = [n, ...this.received];
        for (const fn of this.listeners) fn(n);
        this.emitStatus();
      },
    });
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
    this.connected = false;
    this.status = 'not connected';
    this.received = [];
    this.emitStatus();
  }

  /** Each notification as it arrives. */
  onNotification(fn: LiveListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Any change: connection state or a new notification. */
  subscribe(fn: () => void): () => void {
    this.statusListeners.add(fn);
    return () => this.statusListeners.delete(fn);
  }

  private emitStatus() {
    for (const fn of this.statusListeners) fn();
  }
}
