import { describe, expect, it } from 'vitest';
import { FLOORS, placeWorkspace, type HostRoom } from '../../lib/hosts/placement.js';
import { HOST_STALE_MS, isReachable } from '../../lib/hosts/health.js';

const now = new Date('2026-12-02T12:00:00Z');
const GiB = 1024 ** 3;
const host = (name: string, over: Partial<HostRoom> = {}): HostRoom => ({
  id: `id-${name}`,
  name,
  labels: [],
  draining: false,
  lastHeartbeatAt: new Date(now.getTime() - 2_000),
  maxRunning: 20,
  running: 0,
  memoryFree: 8 * GiB,
  diskFree: 100 * GiB,
  ...over,
});
const placed = (hosts: HostRoom[], labels: string[] = []) => {
  const p = placeWorkspace(hosts, { labels }, now);
  return p.host ? p.host.name : `waits: ${p.reason}`;
};

describe('placement of a new workspace', () => {
  it('goes to the host with the most free running slots', () => {
    expect(placed([host('a', { running: 5 }), host('b', { running: 2 }), host('c', { running: 9 })])).toBe('b');
  });

  it('counts slots against each host\'s own BERTH_MAX_RUNNING', () => {
    expect(placed([host('big', { running: 10, maxRunning: 40 }), host('small', { running: 1, maxRunning: 4 })])).toBe('big');
  });

  it('breaks a tie in slots by free memory, then free disk, then name', () => {
    expect(placed([host('a', { memoryFree: 4 * GiB }), host('b', { memoryFree: 6 * GiB })])).toBe('b');
    expect(placed([host('a', { diskFree: 50 * GiB }), host('b', { diskFree: 40 * GiB })])).toBe('a');
    expect(placed([host('b'), host('a')])).toBe('a');
  });

  it('needs every label berth.yml asks for', () => {
    const hosts = [host('plain', { running: 0 }), host('gpu-1', { running: 7, labels: ['gpu', 'ssd'] }), host('ssd-1', { labels: ['ssd'] })];
    expect(placed(hosts, ['gpu'])).toBe('gpu-1');
    expect(placed(hosts, ['gpu', 'ssd'])).toBe('gpu-1');
    expect(placed(hosts, ['ssd'])).toBe('ssd-1');
    expect(placed(hosts, ['tpu'])).toBe('waits: no host can take this workspace (gpu-1: no label tpu; plain: no label tpu; ssd-1: no label tpu)');
  });

  it('skips draining hosts and hosts whose heartbeat is stale', () => {
    const stale = new Date(now.getTime() - HOST_STALE_MS - 1_000);
    expect(placed([host('a', { draining: true }), host('b', { lastHeartbeatAt: stale }), host('c', { running: 19 })])).toBe('c');
    expect(placed([host('a', { draining: true }), host('b', { lastHeartbeatAt: stale })])).toBe('waits: no host can take this workspace (a: draining; b: unreachable (last heartbeat 16 s ago))');
  });

  it('skips hosts below the memory or disk floor', () => {
    expect(placed([host('a', { memoryFree: FLOORS.memoryBytes - 1 }), host('b', { diskFree: FLOORS.diskBytes - 1 }), host('c', { running: 12 })])).toBe('c');
    expect(placed([host('a', { memoryFree: 100 * 1024 ** 2 }), host('b', { diskFree: GiB })])).toBe(
      'waits: no host can take this workspace (a: 100 MiB memory free (needs 256 MiB); b: 1.0 GiB disk free (needs 2.0 GiB))',
    );
  });

  it('puts a host whose slots are all taken behind hosts with room, but does not refuse it (its start stops its least recently used workspace)', () => {
    expect(placed([host('full', { running: 20 }), host('room', { running: 19 })])).toBe('room');
    expect(placed([host('full', { running: 20, maxRunning: 20 })])).toBe('full');
  });

  it('waits when no host is registered, and says how to add one', () => {
    expect(placed([])).toBe('waits: no host is registered: start a worker (npm run start:worker)');
  });
});

describe('host health', () => {
  it('is reachable up to three missed heartbeats', () => {
    expect(isReachable({ lastHeartbeatAt: new Date(now.getTime() - HOST_STALE_MS) }, now)).toBe(true);
    expect(isReachable({ lastHeartbeatAt: new Date(now.getTime() - HOST_STALE_MS - 1) }, now)).toBe(false);
  });
});
