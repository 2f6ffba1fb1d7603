import type { Duplex } from 'node:stream';

/**
 * The framing of an exec through a host agent (worker/agent/exec.ts ↔ lib/hosts/remote-access.ts):
 * after the upgrade, both ends send frames of [type: 1 byte][length: 4 bytes BE][payload], so one
 * connection carries a program's input, output, error output, terminal size and exit code apart.
 */
export const FRAME = {
  /** web → agent */
  stdin: 0,
  stdinEnd: 1,
  resize: 2,
  /** agent → web */
  stdout: 3,
  stderr: 4,
  /** JSON { exitCode: number | null }: the program's output ended */
  exit: 5,
} as const;

/** a frame can carry at most this much (a bigger payload is split) */
const MAX_FRAME = 1 << 20;

export function writeFrame(socket: Duplex, type: number, payload: Buffer | string = Buffer.alloc(0)): boolean {
  let data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  let ok = true;
  do {
    const part = data.subarray(0, MAX_FRAME);
    data = data.subarray(part.length);
    const head = Buffer.alloc(5);
    head.writeUInt8(type, 0);
    head.writeUInt32BE(part.length, 1);
    ok = socket.write(Buffer.concat([head, part])) && ok;
  } while (data.length);
  return ok;
}

/** calls `onFrame` for each whole frame read from `socket`; a frame over the limit ends the socket */
export function readFrames(socket: Duplex, onFrame: (type: number, payload: Buffer) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (len > MAX_FRAME) return void socket.destroy(new Error('frame too large'));
      if (buf.length < 5 + len) break;
      const type = buf.readUInt8(0);
      const payload = buf.subarray(5, 5 + len);
      buf = buf.subarray(5 + len);
      onFrame(type, payload);
    }
  });
}
