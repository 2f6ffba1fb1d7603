import type { PrismaClient } from '../lib/db/client.js';
import { redact } from '../lib/redact.js';

/**
 * Appends output to a build's log in the database as it arrives, in small batches so the
 * dashboard can stream it without a write per line. Secrets are removed before storing.
 */
/** output kept while the database does not take it; beyond this the oldest goes */
const MAX_PENDING = 1024 * 1024;

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
    this.timer ??= setTimeout(() => void this.flush().catch(() => {}), 300);
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

  /**
   * Writes what is pending. Rejects when the database does not take it (PostgreSQL away):
   * the text is kept and goes with the next flush, so an outage loses no output.
   */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const text = this.pending;
    this.pending = '';
    if (text) {
      // an earlier failed write must not stop this one
      this.flushing = this.flushing.catch(() => {}).then(async () => {
        try {
          await this.db.buildLogChunk.create({ data: { buildId: this.buildId, text } });
        } catch (err) {
          this.pending = (text + this.pending).slice(-MAX_PENDING);
          throw err;
        }
      });
    }
    return this.flushing;
  }
}
