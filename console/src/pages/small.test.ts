import { describe, expect, it } from 'vitest';
import { mergeNotifications } from './Notifications';
import { fileNameOf } from './Reports';
import { safeNext } from './SignIn';
import type { Report } from '../api/types';

describe('after sign-in', () => {
  it('goes back only to a path of the console, never to another origin', () => {
    expect(safeNext('/links/abc?range=7d')).toBe('/links/abc?range=7d');
    expect(safeNext('//evil.example.com/x')).toBe('/');
    expect(safeNext('https://evil.example.com/')).toBe('/');
    expect(safeNext(undefined)).toBe('/');
  });
});

describe('notifications', () => {
  it('merges the live ones into the stored ones once each, newest first', () => {
    const n = (id: string, ack?: string) => ({ id, type: 'report.completed', ackTime: ack });
    const merged = mergeNotifications([n('12'), n('10', 'now')], [n('10'), n('9'), n('11')]);
    expect(merged.map((x) => x.id)).toEqual(['12', '11', '10', '9']);
    // The live copy (acknowledged) wins over the stored one.
    expect(merged[2].ackTime).toBe('now');
  });
});

describe('downloads', () => {
  const report = { id: 'r1', kind: 'SUMMARY_JSON' } as Report;
  it("names the file as the API's Content-Disposition does, else after the report", () => {
    const res = new Response('', { headers: { 'Content-Disposition': 'attachment; filename="clicks-r1.csv"' } });
    expect(fileNameOf(res, report)).toBe('clicks-r1.csv');
    expect(fileNameOf(new Response(''), report)).toBe('report-r1.json');
  });
});
