/**
 * Where a workspace's disk came from and how long each step of its newest start took (issue 17):
 * the start records them on the workspace (diskOrigin, startSteps), the check run, the pull
 * request comment and the workspace page say them in one line.
 */

/** `fresh`: checkout, migrate and seed on an empty disk; `base-disk`: a copy of the repository's base disk; `warm-pool`: a prepared workspace the branch claimed */
export type DiskOrigin = 'fresh' | 'base-disk' | 'warm-pool';

export interface StartStep {
  /** short name: copy, checkout, migrate, seed, services, health … */
  step: string;
  ms: number;
}

const ORIGIN_TEXT: Record<DiskOrigin, string> = {
  fresh: 'fresh (checkout, migrate, seed)',
  'base-disk': 'a copy of the base disk (seed skipped: its data came with the copy)',
  'warm-pool': 'from the warm pool (a prepared workspace this branch claimed: only its own commit was applied, seed skipped)',
};

/** Times the steps of a start: each `begin` ends the step before it. */
export class StepTimer {
  private readonly done: StartStep[] = [];
  private current: { step: string; at: number } | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  begin(step: string): void {
    this.end();
    this.current = { step, at: this.now() };
  }

  end(): void {
    if (!this.current) return;
    const ms = this.now() - this.current.at;
    // a step that came back (migrate of two services) adds up under one name
    const same = this.done.find((s) => s.step === this.current!.step);
    if (same) same.ms += ms;
    else this.done.push({ step: this.current.step, ms });
    this.current = null;
  }

  /** a step timed elsewhere (the base disk copy measured by the runtime) */
  add(step: string, ms: number): void {
    this.done.push({ step, ms });
  }

  list(): StartStep[] {
    return this.done.map((s) => ({ ...s }));
  }
}

/** "1.2 s", "340 ms", "2 min 5 s" */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** the steps as stored (JSON from the database), or [] when they are not what the start wrote */
export function parseSteps(value: unknown): StartStep[] {
  if (!Array.isArray(value)) return [];
  return value.filter((s): s is StartStep => typeof s?.step === 'string' && typeof s?.ms === 'number' && Number.isFinite(s.ms));
}

/**
 * One line for people: "Disk: a copy of the base disk (…). Start took 3.1 s: copy 1.2 s · checkout
 * 0.3 s · migrate 0.5 s · services 1.1 s", or null before the first start said anything.
 */
export function startedFromText(origin: string | null | undefined, steps: unknown): string | null {
  const list = parseSteps(steps);
  const from = origin && origin in ORIGIN_TEXT ? ORIGIN_TEXT[origin as DiskOrigin] : null;
  if (!from && list.length === 0) return null;
  const total = list.reduce((sum, s) => sum + s.ms, 0);
  const timings = list.length ? `Start took ${formatMs(total)}: ${list.map((s) => `${s.step} ${formatMs(s.ms)}`).join(' · ')}` : '';
  return [from ? `Disk: ${from}.` : '', timings].filter(Boolean).join(' ');
}
