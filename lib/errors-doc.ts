/**
 * The client-facing part of the error catalog (lib/errors.ts) as the Markdown table in
 * docs/gateway.md#errors. A unit test fails when the doc drifts; print the table with
 * `npx tsx lib/errors-doc.ts` and paste it over the old one.
 */
import { pathToFileURL } from 'node:url';
import { catalogEntry, ERROR_CATALOG, type ErrorCode } from './errors.ts';

export function errorsTable(): string {
  const lines = ['| code | HTTP | WebSocket | retriable | meaning |', '|---|---|---|---|---|'];
  for (const code of Object.keys(ERROR_CATALOG) as ErrorCode[]) {
    const e = catalogEntry(code);
    const ws = [e.frame ? 'error frame' : '', e.closeCode !== undefined ? `close ${e.closeCode}` : ''].filter(Boolean).join(', ');
    if (e.status === undefined && ws === '') continue; // inside the platform only
    lines.push(`| \`${code}\` | ${e.status ?? '–'} | ${ws || '–'} | ${e.retriable ? 'yes' : 'no'} | ${e.summary} |`);
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.stdout.write(`${errorsTable()}\n`);
