import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Berth's own directory (the one with its package.json). Files that are not code (views/,
 * prisma/migrations/, app/ide/public/) are read from there, so the same code finds them
 * whether it runs from source (tsx app/main.ts) or compiled (node dist/app/main.js).
 */
export const BERTH_ROOT = findRoot(import.meta.dirname);

export const fromRoot = (...parts: string[]): string => join(BERTH_ROOT, ...parts);

function findRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'berth') return dir;
    if (dirname(dir) === dir) throw new Error(`Berth's package.json was not found above ${start}`);
  }
}
