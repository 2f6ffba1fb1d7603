import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { ServerResponse } from 'node:http';
import { fromRoot } from '../../lib/paths.js';

const require = createRequire(import.meta.url);

/**
 * The terminal page's scripts and styles, served by Berth from node_modules (workspace hosts
 * have no internet to lean on, and a CDN would see every IDE user). A fixed list: no path
 * from a request ever reaches the file system.
 */
const ASSETS: Record<string, { file: () => string; type: string }> = {
  'xterm.js': { file: () => require.resolve('@xterm/xterm/lib/xterm.js'), type: 'text/javascript; charset=utf-8' },
  'xterm.css': { file: () => require.resolve('@xterm/xterm/css/xterm.css'), type: 'text/css; charset=utf-8' },
  'addon-fit.js': { file: () => require.resolve('@xterm/addon-fit/lib/addon-fit.js'), type: 'text/javascript; charset=utf-8' },
  'terminal.js': { file: () => fromRoot('app/ide/public/terminal.js'), type: 'text/javascript; charset=utf-8' },
};

export const ASSET_PREFIX = '/__berth/assets/';

const cache = new Map<string, Buffer>();

/** Answers `/__berth/assets/<name>`; false when the path is not under the prefix. */
export async function serveAsset(pathname: string, res: ServerResponse): Promise<boolean> {
  if (!pathname.startsWith(ASSET_PREFIX)) return false;
  const asset = ASSETS[pathname.slice(ASSET_PREFIX.length)];
  if (!asset) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
    return true;
  }
  const name = pathname.slice(ASSET_PREFIX.length);
  let body = cache.get(name);
  if (!body) {
    body = await readFile(asset.file());
    cache.set(name, body);
  }
  res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'private, max-age=3600', 'x-content-type-options': 'nosniff' });
  res.end(body);
  return true;
}
