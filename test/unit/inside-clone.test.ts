/**
 * Paths from a repository resolve inside Berth's clone or are refused, naming the repository
 * path and the link (worker/source/inside-clone.ts). Real files and links in a temp directory.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StepFailedError } from '../../lib/errors.js';
import { buildContextInside, readFileInside } from '../../worker/source/inside-clone.js';

let clone: string;
let outside: string;

async function files(entries: Record<string, string | { link: string }>) {
  for (const [rel, v] of Object.entries(entries)) {
    const abs = path.join(clone, rel);
    await fs.mkdir(path.dirname(abs), { recursive: true });
    if (typeof v === 'string') await fs.writeFile(abs, v);
    else await fs.symlink(v.link, abs);
  }
}

beforeEach(async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-inside-'));
  clone = path.join(root, 'clone');
  outside = path.join(root, 'outside');
  await fs.mkdir(clone);
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'secret'), 'host secret');
});

afterEach(async () => {
  await fs.rm(path.dirname(clone), { recursive: true, force: true });
});

describe('buildContextInside', () => {
  it('returns the real context, following links that stay inside', async () => {
    await files({ 'app/Dockerfile': 'FROM x\n', 'app/lib/a.js': '1', 'app/link.js': { link: 'lib/a.js' }, web: { link: 'app' } });
    expect(await buildContextInside(clone, 'web', 'Dockerfile')).toBe(path.join(await fs.realpath(clone), 'app'));
  });

  it('refuses a context that a link leads out of the clone, naming the link', async () => {
    await files({ Dockerfile: 'FROM x\n', h: { link: outside } });
    await expect(buildContextInside(clone, 'h', 'Dockerfile')).rejects.toThrow(`the build context h leads outside the repository through the symbolic link h (-> ${outside})`);
    await expect(buildContextInside(clone, '../outside', 'Dockerfile')).rejects.toThrow(StepFailedError);
  });

  it('refuses a Dockerfile or .dockerignore that is a link out of the context', async () => {
    await files({ 'a/Dockerfile': { link: '../b/Dockerfile' }, 'b/Dockerfile': 'FROM x\n' });
    await expect(buildContextInside(clone, 'a', 'Dockerfile')).rejects.toThrow('the Dockerfile Dockerfile leads outside the build context a');
    await files({ 'c/Dockerfile': 'FROM x\n', 'c/.dockerignore': { link: path.join(outside, 'secret') } });
    await expect(buildContextInside(clone, 'c', 'Dockerfile')).rejects.toThrow('.dockerignore in the build context c must be a regular file');
  });

  it('refuses a link in the context that points outside it, also a dangling one, also into the rest of the repository', async () => {
    await files({ 'Dockerfile': 'FROM x\n', 'deep/er/pw': { link: '/etc/passwd' } });
    await expect(buildContextInside(clone, '.', 'Dockerfile')).rejects.toThrow('the symbolic link deep/er/pw (-> /etc/passwd) points outside the build context');
    await fs.rm(path.join(clone, 'deep'), { recursive: true });
    await files({ gone: { link: '/nonexistent/x' } });
    await expect(buildContextInside(clone, '.', 'Dockerfile')).rejects.toThrow('the symbolic link gone (-> /nonexistent/x)');
    await fs.rm(path.join(clone, 'gone'));
    await files({ 'svc/Dockerfile': 'FROM x\n', 'svc/shared': { link: '../shared' }, 'shared/x': '1' });
    await expect(buildContextInside(clone, 'svc', 'Dockerfile')).rejects.toThrow('the symbolic link svc/shared (-> ../shared) points outside the build context');
  });
});

describe('readFileInside', () => {
  it('reads files of the clone, none outside it', async () => {
    await files({ '.github/berth.yml': 'services: {}\n', Dockerfile: { link: path.join(outside, 'secret') } });
    expect(await readFileInside(clone, '.github/berth.yml', 'the file')).toBe('services: {}\n');
    expect(await readFileInside(clone, 'missing.yml', 'the file')).toBeUndefined();
    const err = await readFileInside(clone, 'Dockerfile', 'the file').catch((e: Error) => e);
    expect(err).toBeInstanceOf(StepFailedError);
    expect((err as Error).message).toContain('the file Dockerfile leads outside the repository through the symbolic link Dockerfile');
    expect((err as Error).message).not.toContain('host secret');
  });
});
