/**
 * Container output helpers: Docker multiplexes stdout/stderr into framed chunks when the
 * container has no TTY, and users only ever need the last lines of a failure.
 */
import { Writable } from 'node:stream';

/** Keeps the last `max` lines of text that arrives in arbitrary chunks. */
export class LogTail {
  private lines: string[] = [];
  private partial = '';

  constructor(private readonly max: number) {}

  push(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    this.lines.push(...parts.map(stripCarriageReturns));
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }

  toString(): string {
    const all = this.partial ? [...this.lines, stripCarriageReturns(this.partial)] : this.lines;
    return all.slice(-this.max).join('\n');
  }
}

/** Progress bars redraw a line with `\r`; only the final state is worth showing. */
function stripCarriageReturns(line: string): string {
  const parts = line.split('\r').filter(Boolean);
  return parts.length ? parts[parts.length - 1] : '';
}

/** A writable that hands every chunk to `onText`, decoded as UTF-8. */
export function textSink(onText: (text: string) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      onText(chunk.toString('utf8'));
      done();
    },
  });
}

/**
 * Decodes a whole multiplexed log buffer (what `container.logs({ follow: false })` returns
 * for a non-TTY container) into the combined text, in the order Docker wrote it.
 */
export function demuxBuffer(buf: Buffer): string {
  const out: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buf.length) {
    const size = buf.readUInt32BE(offset + 4);
    out.push(buf.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(out).toString('utf8');
}
