/**
 * Paths from a repository (berth.yml's `context` and `dockerfile`, the root Dockerfile, the
 * config file itself) are resolved on the host, in Berth's clone. A committed symbolic link
 * (`h -> /`) makes a path that reads fine lexically (`h/var/lib/docker`) lead anywhere on the
 * host, so every such path is resolved for real and refused when it leaves the clone; a build
 * context must not hold links that lead out of it either. Errors name the repository's path,
 * never the host's.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { StepFailedError } from '../../lib/errors.js';

/** entries a context walk looks at before giving up (a repository this big is not a build context) */
const MAX_ENTRIES = 200_000;

export class OutsideCloneError extends StepFailedError {
  constructor(message: string) {
    super('build', message);
  }
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** the first component of `rel` (below `root`) that is a symbolic link, for the message */
async function firstLink(root: string, rel: string): Promise<string | undefined> {
  let at = root;
  const parts = rel.split(/[\\/]+/).filter((p) => p && p !== '.');
  for (let i = 0; i < parts.length; i++) {
    at = path.join(at, parts[i]!);
    const st = await fs.lstat(at).catch(() => undefined);
    if (!st) return undefined;
    if (st.isSymbolicLink()) return parts.slice(0, i + 1).join('/');
  }
  return undefined;
}

/**
 * The real path of `rel` inside `root` (itself a real path), or undefined when nothing is
 * there. Throws when it resolves outside `root`.
 */
export async function realPathInside(root: string, rel: string, what: string, within = 'the repository'): Promise<string | undefined> {
  let real: string;
  try {
    real = await fs.realpath(path.resolve(root, rel));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      // a dangling link is still a link that leads somewhere: say where it points
      const link = await firstLink(root, rel);
      if (link) {
        const target = await fs.readlink(path.join(root, link)).catch(() => '');
        if (!inside(root, path.resolve(path.dirname(path.join(root, link)), target))) {
          throw new OutsideCloneError(`${what} ${rel} leads outside ${within} through the symbolic link ${link} (-> ${target}); Berth only reads files inside ${within}`);
        }
      }
      return undefined;
    }
    if (code === 'ELOOP') throw new OutsideCloneError(`${what} ${rel} is a loop of symbolic links`);
    throw err;
  }
  if (!inside(root, real)) {
    const link = (await firstLink(root, rel)) ?? rel;
    const target = await fs.readlink(path.join(root, link)).catch(() => '?');
    throw new OutsideCloneError(`${what} ${rel} leads outside ${within} through the symbolic link ${link} (-> ${target}); Berth only reads files inside ${within}`);
  }
  return real;
}

/** Reads a file of the clone; undefined when there is none. Throws when a link leads it outside. */
export async function readFileInside(cloneDir: string, rel: string, what: string): Promise<string | undefined> {
  const root = await fs.realpath(cloneDir);
  const real = await realPathInside(root, rel, what);
  if (!real) return undefined;
  const st = await fs.stat(real);
  if (!st.isFile()) throw new OutsideCloneError(`${what} ${rel} is not a regular file`);
  return fs.readFile(real, 'utf8');
}

/**
 * The build context `context` of the clone as a real directory inside it, after checking that
 * the Dockerfile is a file inside the context, that `.dockerignore` (read on the host) is a
 * plain file, and that no symbolic link in the context points outside it (the engine would
 * not follow it, and Berth will not pack what it points at).
 */
export async function buildContextInside(cloneDir: string, context: string, dockerfile: string): Promise<string> {
  const root = await fs.realpath(cloneDir);
  const ctx = await realPathInside(root, context, 'the build context');
  if (!ctx || !(await fs.stat(ctx)).isDirectory()) {
    throw new StepFailedError('build', `the build context ${context} is not a directory of the repository`);
  }
  const where = context === '.' ? 'the build context' : `the build context ${context}`;
  const file = await realPathInside(ctx, dockerfile, 'the Dockerfile', where);
  if (!file || !(await fs.stat(file)).isFile()) {
    throw new StepFailedError('build', `Dockerfile not found: there is no file ${dockerfile} in ${where}`);
  }
  const ignore = await fs.lstat(path.join(ctx, '.dockerignore')).catch(() => undefined);
  if (ignore && !ignore.isFile()) {
    throw new OutsideCloneError(`.dockerignore in ${where} must be a regular file, not a symbolic link or a directory`);
  }
  await refuseLinksOut(ctx, context);
  return ctx;
}

async function refuseLinksOut(ctx: string, context: string): Promise<void> {
  let seen = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      if (++seen > MAX_ENTRIES) throw new StepFailedError('build', `the build context ${context} holds more than ${MAX_ENTRIES} files`);
      const abs = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(abs);
      else if (entry.isSymbolicLink()) {
        const target = await fs.readlink(abs);
        const real = await fs.realpath(abs).catch(() => path.resolve(dir, target));
        if (!inside(ctx, path.resolve(dir, target)) || !inside(ctx, real)) {
          const rel = path.relative(ctx, abs).split(path.sep).join('/');
          throw new OutsideCloneError(
            `the symbolic link ${context === '.' ? '' : `${context}/`}${rel} (-> ${target}) points outside the build context; commit the file itself, or move the context up so that it holds what the link points at`,
          );
        }
      }
    }
  };
  await walk(ctx);
}
