import fs from 'node:fs/promises';

/** how often the activity log is read: nginx flushes it every 200 ms (nginx-config.ts) */
const READ_EVERY_MS = 250;
/** past this size the log is moved aside and nginx reopens a new one */
const ROTATE_BYTES = 4 * 1024 * 1024;

/**
 * Reads the native proxy's activity log (`<unix time with ms> <host>` per request served on the
 * fast path) and reports each line: the idle timer counts these requests as it counts the ones
 * Berth proxies itself. A request's own time is reported (not when it was read), so an idle
 * stop is scheduled from the real last request.
 */
export class ActivityLogTail {
  private timer?: NodeJS.Timeout;
  private offset = 0;
  private partial = '';
  private reading = false;

  constructor(
    private readonly file: string,
    private readonly onRequest: (host: string, atMs: number) => void,
    private readonly reopen: () => void,
  ) {}

  async start(): Promise<void> {
    // what an earlier run left is old activity: start at its end
    this.offset = (await fs.stat(this.file).catch(() => null))?.size ?? 0;
    this.timer = setInterval(() => void this.tick(), READ_EVERY_MS);
    this.timer.unref();
  }

  /** reads what was appended since the last read */
  async tick(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      await this.readFrom(this.file);
      if (this.offset > ROTATE_BYTES) await this.rotate();
    } catch {
      // not there yet (no request so far) or moved: the next read finds it
    } finally {
      this.reading = false;
    }
  }

  private async readFrom(file: string): Promise<void> {
    const handle = await fs.open(file, 'r');
    try {
      const { size } = await handle.stat();
      if (size < this.offset) this.offset = 0; // a new file
      if (size === this.offset) return;
      const buf = Buffer.alloc(size - this.offset);
      const { bytesRead } = await handle.read(buf, 0, buf.length, this.offset);
      this.offset += bytesRead;
      const lines = (this.partial + buf.subarray(0, bytesRead).toString('latin1')).split('\n');
      this.partial = lines.pop() ?? '';
      this.report(lines);
    } finally {
      await handle.close();
    }
  }

  private report(lines: string[]) {
    // a burst names the same host thousands of times: each host once, at its latest request
    const latest = new Map<string, number>();
    for (const line of lines) {
      const space = line.indexOf(' ');
      const at = Number(line.slice(0, space)) * 1000;
      const host = line.slice(space + 1);
      if (space > 0 && Number.isFinite(at) && host) latest.set(host, Math.max(at, latest.get(host) ?? 0));
    }
    for (const [host, at] of latest) this.onRequest(host, Math.round(at));
  }

  /** the log moved aside; nginx reopens a new one; what it wrote to the old one meanwhile is read, then it goes */
  private async rotate(): Promise<void> {
    const old = `${this.file}.old`;
    await fs.rename(this.file, old);
    this.reopen();
    await new Promise((r) => setTimeout(r, 500));
    await this.readFrom(old).catch(() => {});
    this.report(this.partial ? [this.partial] : []);
    this.partial = '';
    this.offset = 0;
    await fs.rm(old, { force: true });
  }

  close(): void {
    clearInterval(this.timer);
  }
}
