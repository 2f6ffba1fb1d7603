/**
 * The Docker engine's event stream, as Runtime.watch promises it: a service container's death
 * (with whether the kernel's OOM killer caused it) reaches the worker at once, and the stream
 * reconnects by itself, replaying what it missed, when the engine restarts.
 */
import type Dockerode from 'dockerode';
import { dockerReason } from './docker-errors.js';
import { LABELS } from './docker-spec.js';
import type { ContainerDeath } from './types.js';

export interface DockerEvent {
  status?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

/**
 * Calls `onDeath` when a service container of this Berth (`instance`) dies; an OOM kill is
 * remembered in `oomDeaths` too (status reads it, since a restart clears the engine's flag).
 */
export function watchDeaths(
  docker: Dockerode,
  opts: { instance: string; engineAddress: () => string; oomDeaths: Map<string, number> },
  onDeath: (death: ContainerDeath) => void,
  log: (msg: string) => void,
): { close(): void } {
  let closed = false;
  let stream: (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
  let since = Math.floor(Date.now() / 1000);
  const seen = new Set<string>();
  const ooms = new Map<string, number>();
  const onEvent = (event: DockerEvent & { id?: string; time?: number; timeNano?: number; Action?: string }) => {
    const key = `${event.timeNano}:${event.id}:${event.Action ?? event.status}`;
    if (seen.has(key)) return; // replayed after a reconnect
    seen.add(key);
    if (seen.size > 1000) seen.delete(seen.values().next().value!);
    if (event.time) since = event.time;
    const id = event.id ?? event.Actor?.ID;
    const attrs = event.Actor?.Attributes ?? {};
    const action = event.Action ?? event.status;
    if (!id || !attrs[LABELS.workspace]) return;
    if (action === 'oom') {
      ooms.set(id, Date.now());
      return;
    }
    if (action !== 'die') return;
    const oomAt = ooms.get(id);
    ooms.delete(id);
    const oomKilled = oomAt !== undefined && Date.now() - oomAt < 60_000;
    if (oomKilled) {
      opts.oomDeaths.set(id, Date.now());
      if (opts.oomDeaths.size > 1000) opts.oomDeaths.delete(opts.oomDeaths.keys().next().value!);
    }
    onDeath({ workspaceId: attrs[LABELS.workspace]!, service: attrs[LABELS.service] ?? '', containerId: id, exitCode: Number(attrs.exitCode ?? -1), oomKilled });
  };
  const follow = async () => {
    let failures = 0;
    while (!closed) {
      try {
        const filters = { type: ['container' as const], event: ['die', 'oom'], label: [`${LABELS.instance}=${opts.instance}`, `${LABELS.role}=service`] };
        stream = (await docker.getEvents({ since, filters })) as typeof stream;
        if (failures) log(`Docker events: reconnected to ${opts.engineAddress()}`);
        failures = 0;
        if (closed) break;
        let buffered = '';
        await new Promise<void>((resolve) => {
          stream!.on('data', (chunk: Buffer) => {
            buffered += chunk.toString('utf8');
            let nl: number;
            while ((nl = buffered.indexOf('\n')) >= 0) {
              const line = buffered.slice(0, nl).trim();
              buffered = buffered.slice(nl + 1);
              if (!line) continue;
              try {
                onEvent(JSON.parse(line));
              } catch {
                /* not an event */
              }
            }
          });
          stream!.on('end', resolve);
          stream!.on('close', resolve);
          stream!.on('error', () => resolve());
        });
      } catch (err) {
        if (failures++ === 0) log(`Docker events: ${dockerReason(err)}; retrying`);
      }
      if (!closed) await sleep(Math.min(1000 * 2 ** Math.min(failures, 3), 5000));
    }
  };
  void follow();
  return {
    close() {
      closed = true;
      stream?.destroy?.();
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
