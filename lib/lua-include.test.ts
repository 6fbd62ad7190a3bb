import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { includePath, LuaIncludeError, resolveLuaIncludes } from './lua-include.ts';

/** An in-memory tree of Lua files under /lua. */
function tree(files: Record<string, string>) {
  const reads: string[] = [];
  const read = (file: string) => {
    reads.push(file);
    return files[path.relative('/lua', file)];
  };
  return { read, reads };
}

describe('Lua includes', () => {
  it('pastes an include in place of its directive, relative to the including file', () => {
    const { read } = tree({
      'main-1.lua': 'local a = 1\n--- @include "includes/sum"\nreturn sum(a, 2)\n',
      'includes/sum.lua': 'local function sum(x, y) return x + y end\n',
    });
    const out = resolveLuaIncludes('/lua/main-1.lua', read);
    expect(out).toContain('local function sum(x, y) return x + y end');
    expect(out).not.toMatch(/^--- @include/m);
    expect(out.indexOf('local a = 1')).toBeLessThan(out.indexOf('local function sum'));
    expect(out.indexOf('local function sum')).toBeLessThan(out.indexOf('return sum(a, 2)'));
  });

  it('resolves nested includes relative to the file that names them, and each file once', () => {
    const { read } = tree({
      'main-1.lua': '--- @include "includes/a"\n--- @include "includes/b.lua"\n--- @include "includes/a"\nreturn 1\n',
      'includes/a.lua': '--- @include "common"\nlocal A = 1\n',
      'includes/b.lua': "--- @include 'common'\nlocal B = 2\n",
      'includes/common.lua': 'local COMMON = 0\n',
    });
    const out = resolveLuaIncludes('/lua/main-1.lua', read);
    expect(out.match(/local COMMON = 0/g)).toHaveLength(1);
    expect(out.match(/local A = 1/g)).toHaveLength(1);
    expect(out.match(/local B = 2/g)).toHaveLength(1);
    expect(out.indexOf('local COMMON')).toBeLessThan(out.indexOf('local A'));
  });

  it('leaves a script without includes unchanged', () => {
    const text = '-- not a directive: --- @include "x" inside a line\nreturn 1\n';
    expect(resolveLuaIncludes('/lua/plain.lua', tree({ 'plain.lua': text }).read)).toBe(text);
  });

  it('refuses a cycle, naming the chain', () => {
    const { read } = tree({
      'main-1.lua': '--- @include "includes/a"\n',
      'includes/a.lua': '--- @include "b"\n',
      'includes/b.lua': '--- @include "a"\n',
    });
    expect(() => resolveLuaIncludes('/lua/main-1.lua', read)).toThrow(LuaIncludeError);
    expect(() => resolveLuaIncludes('/lua/main-1.lua', read)).toThrow('main-1.lua -> includes/a.lua -> includes/b.lua -> includes/a.lua');
  });

  it('refuses a script that includes itself', () => {
    expect(() => resolveLuaIncludes('/lua/self.lua', tree({ 'self.lua': '--- @include "self"\n' }).read)).toThrow(/cycle: self\.lua -> self\.lua/);
  });

  it('names the including file and line of a missing include', () => {
    const { read } = tree({ 'main-1.lua': 'local x = 1\n--- @include "includes/nope"\n' });
    expect(() => resolveLuaIncludes('/lua/main-1.lua', read)).toThrow('/lua/main-1.lua:2: included "includes/nope" not found (looked for /lua/includes/nope.lua)');
  });

  it('names a missing script', () => {
    expect(() => resolveLuaIncludes('/lua/none.lua', tree({}).read)).toThrow(/none\.lua not found/);
  });

  it('adds .lua only to a name without an extension', () => {
    expect(includePath('/lua/a.lua', 'x')).toBe('/lua/x.lua');
    expect(includePath('/lua/a.lua', 'x.lua')).toBe('/lua/x.lua');
    expect(includePath('/lua/sub/a.lua', '../x')).toBe('/lua/x.lua');
  });

  it('resolves the purchase scripts on disk (every include exists, none repeated)', async () => {
    const fs = await import('node:fs');
    const dir = path.join(import.meta.dirname, '..', 'purchase', 'lua');
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.lua'))) {
      const out = resolveLuaIncludes(path.join(dir, f));
      expect(out, f).not.toMatch(/^\s*---\s*@include/m);
    }
  });
});
