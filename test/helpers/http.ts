import http from 'node:http';

export interface SimpleResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** GET through Berth's port with a chosen Host header, as a browser on <slug>.localhost would. */
export function getWithHost(port: number, host: string, path = '/', headers: Record<string, string> = {}): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', headers: { host, ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    // a request to a stopped workspace is held while it wakes (BERTH_WAKE_HOLD, 30 s)
    req.setTimeout(45_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/**
 * Thrown by a `waitFor` check to say "not yet, and here is why": polling goes on and the
 * timeout's message carries it. Any other error a check throws ends the wait at once (a
 * workspace that failed must fail the test now, not as a timeout minutes later).
 */
export class NotYet extends Error {
  override name = 'NotYet';
}

/**
 * Polls until `check` returns a truthy value. A check that throws fails the wait at once,
 * unless it threw `NotYet`; on timeout the error says the last value or `NotYet` reason seen.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | null | false>, timeoutMs = 120_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (err) {
      if (!(err instanceof NotYet)) throw new Error(`while waiting for ${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * GitHub's timestamps have whole seconds: wait for the next one, so that two events (a push and
 * the comment that approves it) are ordered by their times as they would be for people.
 */
export function nextSecond(): Promise<void> {
  return new Promise((r) => setTimeout(r, 1050 - (Date.now() % 1000)));
}

/** For checks that poll something which may not be listening yet: a refused or reset connection is "not yet". */
export async function notYetWhileUnreachable<T>(probe: () => Promise<T>): Promise<T> {
  try {
    return await probe();
  } catch (err) {
    throw new NotYet(`unreachable: ${(err as Error).message}${(err as Error).cause ? ` (${((err as Error).cause as Error).message})` : ''}`);
  }
}
