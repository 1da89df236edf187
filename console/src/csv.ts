// CSV as RFC 4180 writes it, and the links of a CSV upload (a header row naming targetUrl, and
// optionally alias and expireTime). Small on purpose: the first load's budget is 150 kB.

/** A CSV file that cannot be read, with the line where reading stopped (1-based). */
export class CsvError extends Error {}

/**
 * The records of `text`: fields separated by commas, records by CRLF, LF or CR; a field in double
 * quotes may hold commas, line breaks and doubled quotes (""). A byte-order mark is skipped, a
 * final line break ends the last record. Each record comes with the line it starts on.
 */
export function parseCsv(text: string): { line: number; fields: string[] }[] {
  const out: { line: number; fields: string[] }[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let fields: string[] = [];
  let start = line;
  const n = text.length;
  if (i >= n) return out;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      const opened = line;
      i++;
      for (;;) {
        if (i >= n) throw new CsvError(`line ${opened}: a quoted field is never closed`);
        const c = text[i];
        if (c === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) line++;
        field += c;
        i++;
      }
      if (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
        throw new CsvError(`line ${line}: text after a closing quote (write a quote inside a quoted field as "")`);
      }
    } else {
      while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
        if (text[i] === '"') {
          throw new CsvError(`line ${line}: a quote inside an unquoted field (quote the whole field)`);
        }
        field += text[i];
        i++;
      }
    }
    fields.push(field);
    if (i < n && text[i] === ',') {
      i++;
      continue;
    }
    // The end of a record.
    out.push({ line: start, fields });
    if (i < n && text[i] === '\r') i++;
    if (i < n && text[i] === '\n') i++;
    line++;
    if (i >= n) return out;
    fields = [];
    start = line;
  }
}

/** BatchCreateLinks takes this many links at most (proto/kurt/links/v1/links.proto). */
export const MAX_BATCH_LINKS = 1000;

export const CSV_COLUMNS = ['targetUrl', 'alias', 'expireTime'] as const;

/** One row of an upload: its line in the file and the link it asks for. */
export interface CsvLinkRow {
  line: number;
  link: { targetUrl: string; alias?: string; expireTime?: string };
}

/**
 * The links of an uploaded CSV: a header row naming targetUrl (required), alias and expireTime
 * (RFC 3339) in any order, each once; then a link per row (blank rows are skipped). The values go
 * to the API as they are: it checks each and says what is wrong with that row.
 */
export function linksFromCsv(text: string): CsvLinkRow[] {
  const records = parseCsv(text).filter((r) => !(r.fields.length === 1 && r.fields[0].trim() === ''));
  if (records.length === 0) throw new CsvError('the file is empty: it needs a header row (targetUrl,alias,expireTime)');
  const header = records[0].fields.map((h) => h.trim());
  const at = new Map<string, number>();
  header.forEach((name, index) => {
    if (!(CSV_COLUMNS as readonly string[]).includes(name)) {
      throw new CsvError(`line 1: unknown column "${name}" (the columns are ${CSV_COLUMNS.join(', ')})`);
    }
    if (at.has(name)) throw new CsvError(`line 1: column "${name}" is given twice`);
    at.set(name, index);
  });
  if (!at.has('targetUrl')) throw new CsvError('line 1: the header has no targetUrl column');
  const rows = records.slice(1);
  if (rows.length === 0) throw new CsvError('the file has a header but no links');
  if (rows.length > MAX_BATCH_LINKS) {
    throw new CsvError(`the file has ${rows.length} links: at most ${MAX_BATCH_LINKS} go in one upload`);
  }
  return rows.map(({ line, fields }) => {
    if (fields.length !== header.length) {
      throw new CsvError(`line ${line}: ${fields.length} fields where the header has ${header.length}`);
    }
    const value = (name: string) => {
      const index = at.get(name);
      return index === undefined ? '' : fields[index].trim();
    };
    const link: CsvLinkRow['link'] = { targetUrl: value('targetUrl') };
    if (value('alias')) link.alias = value('alias');
    if (value('expireTime')) link.expireTime = value('expireTime');
    return { line, link };
  });
}

/** A random UUID (version 4) for a request id; getRandomValues works outside secure contexts too. */
export function newRequestId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
