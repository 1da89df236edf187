// After `vite build`: prints the gzipped size of the JavaScript the first page load fetches (the
// entry script index.html names and the chunks it imports statically, not the lazy pages) and
// fails when it is over the budget, 150 kB.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET = 150 * 1000;
const dist = new URL('../dist/', import.meta.url).pathname;
const html = readFileSync(join(dist, 'index.html'), 'utf8');

const first = new Set();
for (const m of html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*rel="modulepreload"[^>]*\shref)="([^"]+\.js)"/g)) {
  first.add(m[1].replace(/^\//, ''));
}
// Static imports of those chunks load with them; dynamic import() ones do not.
const queue = [...first];
while (queue.length) {
  const file = queue.pop();
  const code = readFileSync(join(dist, file), 'utf8');
  for (const m of code.matchAll(/(?:^|[;\n}])\s*import\s*(?:[\w${},*\s]+from\s*)?["']\.\/([^"']+\.js)["']/g)) {
    const dep = join(file, '..', m[1]);
    if (!first.has(dep)) {
      first.add(dep);
      queue.push(dep);
    }
  }
}
if (first.size === 0) {
  console.error('check-size: no script found in dist/index.html');
  process.exit(1);
}
let total = 0;
for (const file of first) {
  const gz = gzipSync(readFileSync(join(dist, file)), { level: 9 }).length;
  total += gz;
  console.log(`  ${file}: ${(gz / 1000).toFixed(1)} kB gzipped`);
}
const line = `first-load JavaScript: ${(total / 1000).toFixed(1)} kB gzipped (budget ${BUDGET / 1000} kB)`;
if (total > BUDGET) {
  console.error(`FAIL ${line}`);
  process.exit(1);
}
console.log(line);
