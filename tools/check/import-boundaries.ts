/**
 * "No product folder imports another product folder's internals" (docs/architecture.md): the
 * product folders are gateway/, purchase/, stream-processors/ and connectors/; one may import
 * from another only that folder's public entry modules (PUBLIC_ENTRIES). Shared shapes live in
 * lib/ (lib/contracts/), which every folder may import.
 *
 * `boundaryViolations` is pure (file paths and source text in, violations out);
 * `projectSources` reads the product folders from disk. `npx tsx tools/check/import-boundaries.ts`
 * prints the violations and exits 1 when there are any; tests/import-boundaries.test.ts runs the
 * same check.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';

export const PRODUCT_FOLDERS = ['gateway', 'purchase', 'stream-processors', 'connectors'] as const;

/** The modules of a product folder that other product folders may import (paths from the project root). */
export const PUBLIC_ENTRIES: ReadonlySet<string> = new Set([
  // The purchase path's API: the gateway's HTTP handlers call it.
  'purchase/service.ts',
  // The purchase request rules (pure): the gateway validates bodies and customer ids with them.
  'purchase/request.ts',
  // The purchase path's real ports (Redis, Postgres), for whoever runs a PurchaseService.
  'purchase/wiring.ts',
  // The purchase gate's audit, for the views' reconciliation.
  'purchase/gate-audit.ts',
  // The inbound connector's validation and exactly-once apply, for the gateway's HTTP twin of stock.adjustments.
  'connectors/adjustments.ts',
  // Expected receipts, receiving and backorder policies, for the gateway's HTTP routes (docs/incoming.md).
  'connectors/receipts.ts',
  // The movement ledger's reads, for the gateway's GET /v1/movements.
  'connectors/ledger.ts',
]);

export interface SourceFile {
  /** Path from the project root, with forward slashes. */
  file: string;
  text: string;
}

export interface Violation {
  file: string;
  imports: string;
}

function folderOf(file: string): string | undefined {
  const top = file.split('/')[0]!;
  return (PRODUCT_FOLDERS as readonly string[]).includes(top) ? top : undefined;
}

/** Relative module specifiers `text` imports or re-exports (static, type-only and dynamic). */
export function importedSpecifiers(text: string): string[] {
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((s) => s.startsWith('.'));
}

/**
 * Every import of one product folder's module by another product folder's file, except imports
 * of PUBLIC_ENTRIES and those `allowed` lists as `file -> imported module`.
 */
export function boundaryViolations(sources: readonly SourceFile[], allowed: ReadonlySet<string> = new Set()): Violation[] {
  const out: Violation[] = [];
  for (const { file, text } of sources) {
    const from = folderOf(file);
    if (from === undefined) continue;
    for (const spec of importedSpecifiers(text)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
      const to = folderOf(target);
      if (to === undefined || to === from || PUBLIC_ENTRIES.has(target) || allowed.has(`${file} -> ${target}`)) continue;
      out.push({ file, imports: target });
    }
  }
  return out;
}

/** The TypeScript sources of the product folders under `root`. */
export function projectSources(root: string): SourceFile[] {
  const out: SourceFile[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(rel);
      } else if (/\.(ts|mts|tsx)$/.test(entry.name)) {
        out.push({ file: rel, text: fs.readFileSync(path.join(root, rel), 'utf8') });
      }
    }
  };
  for (const folder of PRODUCT_FOLDERS) if (fs.existsSync(path.join(root, folder))) walk(folder);
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = path.resolve(import.meta.dirname, '..', '..');
  const violations = boundaryViolations(projectSources(root));
  for (const v of violations) process.stdout.write(`${v.file} imports ${v.imports}\n`);
  process.exitCode = violations.length > 0 ? 1 : 0;
}
