/**
 * Tar streams of host directories, for `docker build` contexts and for copying the checkout
 * onto the workspace disk.
 */
import fs from 'node:fs';
import path from 'node:path';
// dockerode's own .dockerignore matcher (a dependency of dockerode), a port of moby's rules.
import dockerignoreModule from '@balena/dockerignore';
import tar from 'tar-fs';

// A CommonJS module whose typings declare an ES default; `.default` is set at runtime too.
const dockerignore = dockerignoreModule.default;

/** tar-fs supports `umask`; its typings do not list it. */
type PackOptions = tar.PackOptions & { umask?: number };

/**
 * Packs `dir` as-is. `umask: 0` because tar-fs otherwise masks modes with the worker's
 * umask, which would silently drop group/other bits users committed.
 */
export function packDirectory(dir: string): NodeJS.ReadableStream {
  return tar.pack(dir, { umask: 0 } as PackOptions);
}

/**
 * Packs a build context honouring `.dockerignore` the way the docker CLI does: the Dockerfile
 * and `.dockerignore` are always sent, so an over-eager ignore file cannot hide them.
 */
export function packBuildContext(contextDir: string, dockerfile: string): NodeJS.ReadableStream {
  const ignored = readDockerignore(contextDir);
  if (!ignored) return packDirectory(contextDir);
  const keep = new Set([path.normalize(dockerfile), '.dockerignore']);
  const options: PackOptions = {
    umask: 0,
    ignore: (abs) => {
      const rel = path.relative(contextDir, abs);
      if (keep.has(rel) || !ignored.ignores(rel)) return false;
      // tar-fs prunes an ignored directory's whole subtree, which would lose `!` exceptions
      // below it; walk into it instead and let each file be judged.
      return !(ignored.hasExceptions && isDirectory(abs));
    },
  };
  return tar.pack(contextDir, options);
}

interface IgnoreRules {
  ignores(rel: string): boolean;
  hasExceptions: boolean;
}

function readDockerignore(contextDir: string): IgnoreRules | undefined {
  let text: string;
  try {
    const file = path.join(contextDir, '.dockerignore');
    // never through a committed symbolic link (to a host file, a FIFO, /dev/zero)
    if (!fs.lstatSync(file).isFile()) return undefined;
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const rules = dockerignore({ ignorecase: false }).add(text);
  const hasExceptions = text.split('\n').some((l) => l.trim().startsWith('!'));
  return { ignores: (rel) => rules.ignores(rel), hasExceptions };
}

function isDirectory(abs: string): boolean {
  try {
    return fs.lstatSync(abs).isDirectory();
  } catch {
    return false;
  }
}
