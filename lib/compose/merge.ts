/**
 * Merging an override file (`compose.override.yaml`) into the file before it, by the rules of
 * the Compose Specification's "merge" section: mappings merge key by key, `environment`,
 * `labels`, `build.args` and `depends_on` merge by name whatever their form, `volumes` by target
 * path, `ports`/`expose`/`env_file` and other sequences are joined, and `command`, `entrypoint`
 * and `healthcheck.test` are replaced.
 */

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `["A=1", "B"]` or `{A: 1}` as a mapping (a bare `B` maps to null: "take it from the environment") */
export function listToMap(v: unknown): Obj {
  if (isObj(v)) return { ...v };
  const out: Obj = {};
  for (const item of Array.isArray(v) ? v : []) {
    const s = String(item);
    const eq = s.indexOf('=');
    if (eq < 0) out[s] = null;
    else out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return out;
}

/** `depends_on: [db]` as `{db: {condition: service_started}}` */
export function dependsOnMap(v: unknown): Obj {
  if (isObj(v)) return { ...v };
  return Object.fromEntries((Array.isArray(v) ? v : []).map((name) => [String(name), { condition: 'service_started' }]));
}

/** the container path of a `volumes:` entry, short (`src:/target:ro`) or long form */
export function volumeTarget(v: unknown): string {
  if (isObj(v)) return String(v.target ?? '');
  const parts = String(v).split(':');
  return parts.length === 1 ? parts[0]! : parts[1]!;
}

const REPLACED = new Set(['command', 'entrypoint', 'test']);
const BY_NAME: Record<string, (v: unknown) => Obj> = { environment: listToMap, labels: listToMap, args: listToMap, depends_on: dependsOnMap };

function mergeValue(key: string, base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (base === undefined || base === null || over === null) return over;
  if (REPLACED.has(key)) return over;
  if (BY_NAME[key]) return { ...BY_NAME[key](base), ...BY_NAME[key](over) };
  if (key === 'volumes' && Array.isArray(base) && Array.isArray(over)) {
    const targets = new Set(over.map(volumeTarget));
    return [...base.filter((v) => !targets.has(volumeTarget(v))), ...over];
  }
  if (key === 'build' && (typeof base === 'string' || typeof over === 'string')) {
    const asObj = (b: unknown) => (typeof b === 'string' ? { context: b } : b);
    return mergeMaps(asObj(base) as Obj, asObj(over) as Obj);
  }
  if (Array.isArray(base) && Array.isArray(over)) {
    const seen = new Set(base.map((v) => JSON.stringify(v)));
    return [...base, ...over.filter((v) => !seen.has(JSON.stringify(v)))];
  }
  if (isObj(base) && isObj(over)) return mergeMaps(base, over);
  return over;
}

function mergeMaps(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = mergeValue(k, base[k], v);
  return out;
}

/** `over` (a later file) merged into `base` (an earlier one); neither is changed. */
export function mergeCompose(base: Obj, over: Obj): Obj {
  return mergeMaps(base, over);
}
