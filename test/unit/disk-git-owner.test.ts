/**
 * Berth runs git on a workspace disk as the owner of /workspace/.git, read from the first
 * header of the engine's archive of it (worker/runtime/disk-git.ts ownerFromTar).
 */
import { describe, expect, it } from 'vitest';
import { ownerFromTar } from '../../worker/runtime/disk-git.js';

function header(name: string, o: { uid?: number; gid?: number; type?: string; size?: number; base256Uid?: number } = {}): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 'latin1');
  const octal = (n: number, len: number) => n.toString(8).padStart(len - 1, '0') + '\0';
  h.write(octal(0o755, 8), 100, 'latin1');
  if (o.base256Uid !== undefined) {
    h[108] = 0x80;
    h.writeUIntBE(o.base256Uid, 108 + 2, 6);
  } else h.write(octal(o.uid ?? 0, 8), 108, 'latin1');
  h.write(octal(o.gid ?? 0, 8), 116, 'latin1');
  h.write(octal(o.size ?? 0, 12), 124, 'latin1');
  h.write(o.type ?? '5', 156, 'latin1');
  return h;
}

function pax(records: Record<string, string>): Buffer {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    let len = rest.length + 1;
    while (String(len).length + rest.length !== len) len++;
    body += `${len}${rest}`;
  }
  const data = Buffer.alloc(Math.ceil(body.length / 512) * 512);
  data.write(body, 'utf8');
  return Buffer.concat([header('PaxHeader/.git', { type: 'x', size: Buffer.byteLength(body) }), data]);
}

describe('ownerFromTar', () => {
  it('reads the owner of the first entry', () => {
    expect(ownerFromTar(header('.git/', { uid: 1000, gid: 1001 }))).toBe('1000:1001');
    expect(ownerFromTar(header('.git/', { uid: 0, gid: 0 }))).toBe('0:0');
  });

  it('takes ids from a PAX header and large ones in base-256', () => {
    expect(ownerFromTar(Buffer.concat([pax({ uid: '3000000', gid: '3000001' }), header('.git/', { uid: 1, gid: 1 })]))).toBe('3000000:3000001');
    expect(ownerFromTar(header('.git/', { base256Uid: 5_000_000, gid: 7 }))).toBe('5000000:7');
  });

  it('waits for more bytes, and says null for an empty archive', () => {
    expect(ownerFromTar(Buffer.alloc(100))).toBeUndefined();
    const withPax = Buffer.concat([pax({ uid: '5' }), header('.git/')]);
    expect(ownerFromTar(withPax.subarray(0, 600))).toBeUndefined();
    expect(ownerFromTar(Buffer.alloc(1024))).toBeNull();
  });
});
