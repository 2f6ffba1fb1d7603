import http from 'node:http';

export interface ClientResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** the URL that answered (after redirects, when followed) */
  url: string;
}

interface StoredCookie {
  value: string;
  path: string;
}

/**
 * A tiny browser for tests: a cookie jar keyed by host name (cookies ignore ports, as in
 * browsers; host-only, which is all Berth sets) and redirects followed on request. Every
 * request goes to 127.0.0.1 with the URL's host in the Host header, so `*.localhost` names
 * need no resolver.
 */
export class CookieClient {
  readonly jar = new Map<string, Map<string, StoredCookie>>();

  async get(url: string, opts: { follow?: boolean; headers?: Record<string, string>; maxHops?: number } = {}): Promise<ClientResponse> {
    let current = url;
    for (let hop = 0; ; hop++) {
      const res = await this.request('GET', current, { headers: opts.headers });
      if (!opts.follow || res.status < 300 || res.status >= 400 || !res.headers.location) return res;
      if (hop >= (opts.maxHops ?? 10)) throw new Error(`too many redirects from ${url}`);
      current = new URL(res.headers.location, current).toString();
    }
  }

  async post(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<ClientResponse> {
    return this.request('POST', url, {
      body: new URLSearchParams(form).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    });
  }

  request(method: string, url: string, opts: { body?: string; headers?: Record<string, string> } = {}): Promise<ClientResponse> {
    const u = new URL(url);
    const cookie = this.cookieHeader(u);
    const headers: Record<string, string> = { host: u.host, ...(cookie ? { cookie } : {}), ...(opts.headers ?? {}) };
    if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: Number(u.port || 80), method, path: u.pathname + u.search, headers }, (res) => {
        this.store(u, res.headers['set-cookie'] ?? []);
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, url }));
      });
      req.on('error', reject);
      req.setTimeout(15_000, () => req.destroy(new Error(`timeout: ${method} ${url}`)));
      req.end(opts.body);
    });
  }

  /** the value the jar holds for `name` on `host` (a host name, no port) */
  cookie(host: string, name: string): string | undefined {
    return this.jar.get(host)?.get(name)?.value;
  }

  setCookie(host: string, name: string, value: string, path = '/') {
    if (!this.jar.has(host)) this.jar.set(host, new Map());
    this.jar.get(host)!.set(name, { value, path });
  }

  cookieHeader(u: URL): string {
    const cookies = this.jar.get(u.hostname);
    if (!cookies) return '';
    return [...cookies]
      .filter(([, c]) => u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map(([name, c]) => `${name}=${c.value}`)
      .join('; ');
  }

  private store(u: URL, lines: string[]) {
    for (const line of lines) {
      const [pair, ...attrs] = line.split(';').map((p) => p.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      const attr = (n: string) => attrs.find((a) => a.toLowerCase().startsWith(`${n}=`))?.split('=')[1];
      if (attrs.some((a) => a.toLowerCase().startsWith('domain='))) throw new Error(`test client: Domain cookies are not supported (${line})`);
      const path = attr('path') ?? '/';
      if (!this.jar.has(u.hostname)) this.jar.set(u.hostname, new Map());
      const maxAge = attr('max-age');
      if (maxAge !== undefined && Number(maxAge) <= 0) this.jar.get(u.hostname)!.delete(name);
      else this.jar.get(u.hostname)!.set(name, { value, path });
    }
  }
}
