import type { PrismaClient } from '../lib/db/client.js';
import { redact } from '../lib/redact.js';

/**
 * Appends output to a build's log in the database as it arrives, in small batches so the
 * dashboard can stream it without a write per line. Secrets are removed before storing.
 */
export class BuildLog {
  private pending = '';
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private all = '';

  constructor(
    private db: PrismaClient,
    private buildId: string,
    private secrets: string[] = [],
  ) {}

  write = (text: string) => {
    if (!text) return;
    const clean = redact(text, this.secrets);
    this.pending += clean;
    this.all = (this.all + clean).slice(-20_000);
    this.timer ??= setTimeout(() => void this.flush(), 300);
  };

  line(text: string) {
    this.write(`${text}\n`);
  }

  /** the last `n` lines written by this process */
  tail(n = 30): string {
    return this.all.split('\n').slice(-n - 1).join('\n').trim();
  }

  addSecret(secret: string) {
    this.secrets.push(secret);
  }

  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const text = this.pending;
    this.pending = '';
    if (text) {
      this.flushing = this.flushing.then(() => this.db.buildLogChunk.create({ data: { buildId: this.buildId, text } }).then(() => {}));
    }
    return this.flushing;
  }
}
