/**
 * Lua includes, resolved when a script is loaded (before ioredis `defineCommand` hashes it): a line
 * `--- @include "name"` is replaced by the text of `name` (relative to the including file, `.lua`
 * added when it has no extension). Redis runs one self-contained script per call, so shared
 * snippets (purchase/lua/includes/) are pasted in here rather than `require`d there.
 *
 * Rules: every file is pasted at most once per script (a second directive for it becomes a
 * comment), a cycle is refused naming the chain, and an include that does not exist is refused
 * naming the file and line that asked for it. Pure apart from the `read` function it is given.
 */
import fs from 'node:fs';
import path from 'node:path';

const DIRECTIVE = /^\s*---\s*@include\s+["']([^"']+)["']\s*$/;

/** The text of a file, or undefined when it does not exist. */
export type ReadLuaFile = (file: string) => string | undefined;

export class LuaIncludeError extends Error {
  override readonly name = 'LuaIncludeError';
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Where `name`, included from `from`, lives. */
export function includePath(from: string, name: string): string {
  const file = path.resolve(path.dirname(from), name);
  return path.extname(file) === '' ? `${file}.lua` : file;
}

/** The script in `file` with every include pasted in (each file once). */
export function resolveLuaIncludes(file: string, read: ReadLuaFile = readIfExists): string {
  const root = path.resolve(file);
  const text = read(root);
  if (text === undefined) throw new LuaIncludeError(`Lua script ${file} not found`);
  const included = new Set<string>([root]);
  const expand = (source: string, at: string, stack: string[]): string =>
    source
      .split('\n')
      .map((line, i) => {
        const m = DIRECTIVE.exec(line);
        if (!m) return line;
        const name = m[1]!;
        const target = includePath(at, name);
        if (stack.includes(target)) {
          throw new LuaIncludeError(`Lua include cycle: ${[...stack, target].map((f) => path.relative(path.dirname(root), f)).join(' -> ')}`);
        }
        if (included.has(target)) return `-- @include "${name}": already included above`;
        const body = read(target);
        if (body === undefined) throw new LuaIncludeError(`${at}:${i + 1}: included "${name}" not found (looked for ${target})`);
        included.add(target);
        return `-- @include "${name}" {{{\n${expand(body.replace(/\n$/, ''), target, [...stack, target])}\n-- }}} "${name}"`;
      })
      .join('\n');
  return expand(text, root, [root]);
}
