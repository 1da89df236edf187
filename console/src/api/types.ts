// The shapes of the public API's JSON (proto3 JSON: camelCase names, enums as their names,
// timestamps as RFC 3339 strings, 64-bit integers as strings). Only what the console reads.

export interface Session {
  sessionToken: string;
  sessionTokenExpireTime?: string;
  refreshToken: string;
  refreshTokenExpireTime?: string;
  accountId?: string;
  email?: string;
}

export interface Link {
  code: string;
  shortUrl: string;
  targetUrl: string;
  createTime?: string;
  updateTime?: string;
  expireTime?: string;
  /** The redirect asks for a password first (the password itself is never shown). */
  passwordProtected?: boolean;
  redirectRules?: RedirectRule[];
}

/** One condition of a redirect rule: exactly one of the four (docs/links.md). */
export type RedirectCondition =
  | { device: string }
  | { os: string }
  | { language: string }
  | { country: string };

/** Where the redirect sends when all of `conditions` hold for the visitor. */
export interface RedirectRule {
  conditions: RedirectCondition[];
  targetUrl: string;
}

export interface ListLinksResponse {
  links?: Link[];
  nextPageToken?: string;
}

export type Interval = 'HOUR' | 'DAY';

export interface DimensionCount {
  value: string;
  clicks?: string | number;
}

export interface LinkStats {
  code: string;
  startTime?: string;
  endTime?: string;
  interval?: Interval;
  totalClicks?: string | number;
  series?: { startTime: string; clicks?: string | number }[];
  topReferrers?: DimensionCount[];
  topAgents?: DimensionCount[];
}

export type ReportKind = 'CLICKS_CSV' | 'SUMMARY_JSON';
export type ReportState =
  | 'PENDING'
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'CANCELLED'
  | 'EXPIRED';

export interface Report {
  id: string;
  kind: ReportKind;
  startTime: string;
  endTime: string;
  code?: string;
  state: ReportState;
  progressRows?: string | number;
  rowCount?: string | number;
  sizeBytes?: string | number;
  contentType?: string;
  error?: string;
  attempts?: number;
  requestId?: string;
  createTime?: string;
  updateTime?: string;
  finishTime?: string;
}

export interface ListReportsResponse {
  reports?: Report[];
  nextPageToken?: string;
}

export interface ReportNotice {
  reportId: string;
  kind?: ReportKind;
  state?: ReportState;
  rowCount?: string | number;
  sizeBytes?: string | number;
  contentPath?: string;
  error?: string;
}

export interface Notification {
  id: string;
  type: string;
  message?: string;
  report?: ReportNotice;
  createTime?: string;
  ackTime?: string;
}

export interface ListNotificationsResponse {
  notifications?: Notification[];
  nextPageToken?: string;
}

export interface ApiKey {
  id: string;
  prefix?: string;
  name?: string;
  createTime?: string;
  revokeTime?: string;
}

export interface CreateKeyResponse {
  key: ApiKey;
  secretKey: string;
}

export interface Webhook {
  url?: string;
  updateTime?: string;
  secret?: string;
}

/** int64 fields arrive as strings (proto3 JSON); absent means 0. */
export function num(v: string | number | undefined): number {
  return v === undefined ? 0 : Number(v);
}

/** POST /v1/links:batchCreate: per link asked for, in order, the link or its error. */
export interface BatchCreateLinksResponse {
  results?: { index?: number; link?: Link; error?: { code?: number; message?: string } }[];
}
