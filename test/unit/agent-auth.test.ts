import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { signAgentRequest, verifyAgentRequest } from '../../lib/hosts/agent-auth.js';
import { FRAME, readFrames, writeFrame } from '../../lib/hosts/agent-frames.js';

const SECRET = 'a'.repeat(64);

describe('host agent request signatures', () => {
  const now = Date.parse('2026-12-02T12:00:00Z');
  const path = '/v1/tunnel?workspace=w1&to=10.1.0.2%3A3000';

  it('accepts exactly the signed method and path within the window', () => {
    const sig = signAgentRequest(SECRET, 'GET', path, now);
    expect(verifyAgentRequest(SECRET, sig, 'GET', path, now)).toBe(true);
    expect(verifyAgentRequest(SECRET, sig, 'GET', path, now + 59_000)).toBe(true);
    expect(verifyAgentRequest(SECRET, sig, 'GET', path, now + 61_000)).toBe(false);
    expect(verifyAgentRequest(SECRET, sig, 'POST', path, now)).toBe(false);
    expect(verifyAgentRequest(SECRET, sig, 'GET', path.replace('w1', 'w2'), now)).toBe(false);
    expect(verifyAgentRequest(SECRET, sig, 'GET', path.replace('3000', '5432'), now)).toBe(false);
  });

  it('refuses another secret, a missing or malformed header', () => {
    expect(verifyAgentRequest(SECRET, signAgentRequest('b'.repeat(64), 'GET', path, now), 'GET', path, now)).toBe(false);
    expect(verifyAgentRequest(SECRET, undefined, 'GET', path, now)).toBe(false);
    expect(verifyAgentRequest(SECRET, ['x', 'y'], 'GET', path, now)).toBe(false);
    expect(verifyAgentRequest(SECRET, 'garbage', 'GET', path, now)).toBe(false);
    expect(verifyAgentRequest(SECRET, `${Math.floor(now / 1000)}.${'0'.repeat(63)}`, 'GET', path, now)).toBe(false);
  });
});

describe('exec frames', () => {
  it('carries types and payloads apart however the bytes are cut', () => {
    const wire = new PassThrough();
    const chunks: Buffer[] = [];
    wire.on('data', (c: Buffer) => chunks.push(c));
    writeFrame(wire, FRAME.stdout, 'hello');
    writeFrame(wire, FRAME.stderr, Buffer.from([0, 1, 2]));
    writeFrame(wire, FRAME.exit, JSON.stringify({ exitCode: 3 }));
    const bytes = Buffer.concat(chunks);
    const got: Array<[number, string]> = [];
    const reader = new PassThrough();
    readFrames(reader, (type, payload) => got.push([type, payload.toString('hex')]));
    for (let i = 0; i < bytes.length; i += 3) reader.write(bytes.subarray(i, i + 3));
    expect(got).toEqual([
      [FRAME.stdout, Buffer.from('hello').toString('hex')],
      [FRAME.stderr, '000102'],
      [FRAME.exit, Buffer.from('{"exitCode":3}').toString('hex')],
    ]);
  });
});
