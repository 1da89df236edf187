import { describe, expect, it } from 'vitest';
import { CsvError, linksFromCsv, MAX_BATCH_LINKS, newRequestId, parseCsv } from './csv';

const fields = (text: string) => parseCsv(text).map((r) => r.fields);

describe('parseCsv (RFC 4180)', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks, and any line ending', () => {
    expect(fields('a,b\r\n"x, y","say ""hi"""\r\n')).toEqual([
      ['a', 'b'],
      ['x, y', 'say "hi"'],
    ]);
    expect(fields('a\nb\rc')).toEqual([['a'], ['b'], ['c']]);
    expect(fields('"two\nlines",z\nnext,')).toEqual([
      ['two\nlines', 'z'],
      ['next', ''],
    ]);
    expect(fields('\ufeffh1,h2\n,\n')).toEqual([
      ['h1', 'h2'],
      ['', ''],
    ]);
    expect(fields('')).toEqual([]);
  });

  it('gives each record the line it starts on, counting line breaks inside quotes', () => {
    expect(parseCsv('h\n"a\r\nb"\nc\n').map((r) => r.line)).toEqual([1, 2, 4]);
  });

  it('refuses what RFC 4180 does not allow, naming the line', () => {
    expect(() => parseCsv('a\n"open,b\n')).toThrow(new CsvError('line 2: a quoted field is never closed'));
    expect(() => parseCsv('a\nx"y\n')).toThrow(/^line 2: a quote inside an unquoted field/);
    expect(() => parseCsv('"a"b\n')).toThrow(/^line 1: text after a closing quote/);
  });
});

describe('linksFromCsv', () => {
  it('maps the header to the fields of a link, in any order, skipping blank rows', () => {
    const rows = linksFromCsv(
      'alias,targetUrl,expireTime\r\nspring,https://example.com/a,2030-01-01T00:00:00Z\r\n\r\n,https://example.com/b,\r\n',
    );
    expect(rows).toEqual([
      { line: 2, link: { targetUrl: 'https://example.com/a', alias: 'spring', expireTime: '2030-01-01T00:00:00Z' } },
      { line: 4, link: { targetUrl: 'https://example.com/b' } },
    ]);
    expect(linksFromCsv('targetUrl\nnot a url\n')).toEqual([{ line: 2, link: { targetUrl: 'not a url' } }]);
  });

  it('refuses a file it cannot map, saying why', () => {
    expect(() => linksFromCsv('')).toThrow(/the file is empty/);
    expect(() => linksFromCsv('alias\nx\n')).toThrow('line 1: the header has no targetUrl column');
    expect(() => linksFromCsv('targetUrl,tags\nx,y\n')).toThrow(/line 1: unknown column "tags"/);
    expect(() => linksFromCsv('targetUrl,targetUrl\nx,y\n')).toThrow('line 1: column "targetUrl" is given twice');
    expect(() => linksFromCsv('targetUrl\n')).toThrow('the file has a header but no links');
    expect(() => linksFromCsv('targetUrl,alias\nhttps://example.com/\n')).toThrow(
      'line 2: 1 fields where the header has 2',
    );
    const many = `targetUrl\n${'https://example.com/\n'.repeat(MAX_BATCH_LINKS + 1)}`;
    expect(() => linksFromCsv(many)).toThrow('the file has 1001 links: at most 1000 go in one upload');
    expect(linksFromCsv(`targetUrl\n${'https://example.com/\n'.repeat(MAX_BATCH_LINKS)}`)).toHaveLength(1000);
  });
});

describe('newRequestId', () => {
  it('is a fresh version 4 UUID each time', () => {
    const a = newRequestId();
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(newRequestId()).not.toBe(a);
  });
});
