import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The import rules of design.md, as a user of the code base relies on them: the web process
 * never talks to a container engine itself (every call goes through WorkspaceAccess, so a
 * workspace on another host or engine is reached the same way), app/ reaches worker/ only in
 * its composition root, and lib/ is below both.
 */
const root = path.resolve(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f));
}

function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]!);
}

function offenders(dir: string, bad: (spec: string, file: string) => boolean): string[] {
  return sources(dir).flatMap((f) => importsOf(f).filter((s) => bad(s, f)).map((s) => `${f} imports ${s}`));
}

const resolvesInto = (file: string, spec: string, top: string) => spec.startsWith('.') && path.relative(root, path.resolve(root, path.dirname(file), spec)).split(path.sep)[0] === top;

describe('import boundaries', () => {
  it('app/ never imports a container engine client: the web goes through WorkspaceAccess', () => {
    expect(offenders('app', (s) => s === 'dockerode' || s.startsWith('docker-modem'))).toEqual([]);
  });

  it('app/ imports worker/ only in app/main.ts, the composition root', () => {
    expect(offenders('app', (s, f) => f !== path.join('app', 'main.ts') && resolvesInto(f, s, 'worker'))).toEqual([]);
  });

  it('lib/ imports neither app/ nor worker/', () => {
    expect(offenders('lib', (s, f) => resolvesInto(f, s, 'app') || resolvesInto(f, s, 'worker'))).toEqual([]);
  });
});
