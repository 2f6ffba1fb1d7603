/**
 * Checks recorded fake-GitHub traffic against GitHub's published OpenAPI descriptions
 * (@octokit/openapi). Only requests under /api/v3 are checked (git and OAuth traffic is not REST).
 *
 *   assertDocumentedRequests(fake.requests)           // method + path documented, body/query params documented
 *   assertDocumentedResponses(fake.requests)          // the fake's own 2xx JSON answers satisfy the response schema
 */
import { createRequire } from "node:module";
import type { RecordedRequest } from "./github.js";

const require = createRequire(import.meta.url);

export type SpecName = "api.github.com" | "ghes-3.17" | "ghes-3.18" | "ghes-3.19" | "ghec";

export interface CheckOptions {
  /** specs to check against (default: newest GHES and api.github.com) */
  specs?: SpecName[];
  /**
   * "any" (default): the request must be documented in at least one of `specs`.
   * "all": it must be documented in every one of them (Berth must run on github.com AND GHES).
   */
  mode?: "any" | "all";
  /** also require every query parameter to be documented (default true) */
  checkQuery?: boolean;
  /** prefix of REST paths (default /api/v3) */
  prefix?: string;
}

type Json = any;

interface Operation {
  method: string;
  template: string;
  regex: RegExp;
  greedyRegex: RegExp;
  literals: number;
  op: Json;
  pathItem: Json;
}

interface Spec {
  name: SpecName;
  doc: Json;
  ops: Operation[];
}

const specCache = new Map<SpecName, Spec>();

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function loadSpec(name: SpecName): Spec {
  const cached = specCache.get(name);
  if (cached) return cached;
  const doc = require(`@octokit/openapi/generated/${name}.json`);
  const ops: Operation[] = [];
  for (const [template, pathItem] of Object.entries<Json>(doc.paths)) {
    const segs = template.split("/").filter(Boolean);
    const toRe = (greedyLast: boolean) =>
      new RegExp(
        "^/" +
          segs
            .map((s, i) => {
              if (/^\{[^}]+\}$/.test(s)) return greedyLast && i === segs.length - 1 ? "(.+)" : "([^/]+)";
              // templates like "{base}...{head}" or "{archive_format}{/ref}" inside a segment
              return s
                .split(/(\{[^}]+\})/)
                .map((part) => (/^\{[^}]+\}$/.test(part) ? "([^/]+?)" : escapeRe(part)))
                .join("");
            })
            .join("/") +
          "$",
      );
    const literals = segs.filter((s) => !s.includes("{")).length;
    for (const method of ["get", "post", "put", "patch", "delete", "head"]) {
      if (!pathItem[method]) continue;
      ops.push({ method: method.toUpperCase(), template, regex: toRe(false), greedyRegex: toRe(true), literals, op: pathItem[method], pathItem });
    }
  }
  const spec = { name, doc, ops };
  specCache.set(name, spec);
  return spec;
}

function deref(doc: Json, node: Json, seen = 0): Json {
  let n = node;
  while (n && typeof n === "object" && typeof n.$ref === "string" && seen < 50) {
    const parts = n.$ref.replace(/^#\//, "").split("/").map((p: string) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
    n = parts.reduce((acc: Json, p: string) => (acc == null ? acc : acc[p]), doc);
    seen++;
  }
  return n;
}

function findOperation(spec: Spec, method: string, apiPath: string): Operation | undefined {
  const candidates = spec.ops.filter((o) => o.method === method && o.regex.test(apiPath));
  const pool = candidates.length ? candidates : spec.ops.filter((o) => o.method === method && o.greedyRegex.test(apiPath));
  return pool.sort((a, b) => b.literals - a.literals)[0];
}

/** property names a JSON schema accepts at top level; null = any property allowed */
function schemaProperties(doc: Json, schema: Json, depth = 0): Map<string, Json> | null {
  const s = deref(doc, schema);
  if (!s || typeof s !== "object" || depth > 20) return new Map();
  const out = new Map<string, Json>();
  let open = false;
  if (s.properties) for (const [k, v] of Object.entries(s.properties)) out.set(k, v);
  for (const key of ["allOf", "oneOf", "anyOf"]) {
    if (Array.isArray(s[key])) {
      for (const sub of s[key]) {
        const props = schemaProperties(doc, sub, depth + 1);
        if (props === null) open = true;
        else for (const [k, v] of props) if (!out.has(k)) out.set(k, v);
      }
    }
  }
  if (s.additionalProperties === true || (s.additionalProperties && typeof s.additionalProperties === "object")) open = true;
  if (!s.properties && !s.allOf && !s.oneOf && !s.anyOf && (s.type === "object" || s.type === undefined) && s.additionalProperties === undefined) {
    open = true; // free-form object
  }
  return open ? null : out;
}

function problemsFor(spec: Spec, req: RecordedRequest, apiPath: string, checkQuery: boolean): string[] | "undocumented" {
  const found = findOperation(spec, req.method, apiPath);
  if (!found) return "undocumented";
  const problems: string[] = [];
  const { doc } = spec;
  const body = req.body;
  const rb = deref(doc, found.op.requestBody);
  if (body !== undefined && body !== null && !(typeof body === "object" && !Array.isArray(body) && Object.keys(body).length === 0)) {
    const content = rb?.content ?? {};
    const media = content["application/json"] ?? Object.values(content)[0];
    if (!media) {
      problems.push(`${found.method} ${found.template} takes no request body, got ${JSON.stringify(body).slice(0, 200)}`);
    } else if (typeof body === "object" && !Array.isArray(body)) {
      const props = schemaProperties(doc, media.schema);
      if (props !== null) {
        for (const [key, value] of Object.entries(body)) {
          const prop = props.get(key);
          if (!prop) {
            problems.push(`body property "${key}" is not documented for ${found.method} ${found.template} (documented: ${[...props.keys()].join(", ")})`);
            continue;
          }
          const p = deref(doc, prop);
          if (p && Array.isArray(p.enum) && typeof value === "string" && !p.enum.includes(value)) {
            problems.push(`body property "${key}"=${JSON.stringify(value)} is not one of ${JSON.stringify(p.enum)} for ${found.method} ${found.template}`);
          }
        }
        const schema = deref(doc, media.schema);
        for (const reqKey of schema?.required ?? []) {
          if (!(reqKey in (body as object))) problems.push(`required body property "${reqKey}" missing for ${found.method} ${found.template}`);
        }
      }
    }
  } else if (rb?.required) {
    const schema = deref(doc, (rb.content?.["application/json"] ?? {}).schema);
    if (schema?.required?.length) problems.push(`${found.method} ${found.template} requires a body with ${schema.required.join(", ")}`);
  }
  if (checkQuery) {
    const params = [...(found.pathItem.parameters ?? []), ...(found.op.parameters ?? [])].map((p: Json) => deref(doc, p));
    const queryNames = new Set(params.filter((p: Json) => p?.in === "query").map((p: Json) => p.name));
    for (const key of Object.keys(req.query)) {
      if (!queryNames.has(key)) {
        problems.push(`query parameter "${key}" is not documented for ${found.method} ${found.template} (documented: ${[...queryNames].join(", ") || "none"})`);
      }
    }
  }
  return problems;
}

function apiPathOf(req: RecordedRequest, prefix: string): string | null {
  if (!req.path.startsWith(prefix + "/") && req.path !== prefix) return null;
  let p = req.path.slice(prefix.length) || "/";
  if (p.length > 1) p = p.replace(/\/+$/, "");
  return p;
}

/**
 * Throws (listing every offender) unless each /api/v3 request in `requests` is a documented
 * operation (method + path template) whose top-level JSON body properties (and query
 * parameters) are documented for that operation.
 */
export function assertDocumentedRequests(requests: readonly RecordedRequest[], opts: CheckOptions = {}): void {
  const specNames = opts.specs ?? ["ghes-3.19", "api.github.com"];
  const mode = opts.mode ?? "any";
  const prefix = opts.prefix ?? "/api/v3";
  const checkQuery = opts.checkQuery ?? true;
  const specs = specNames.map(loadSpec);
  const offenders: string[] = [];
  for (const req of requests) {
    const apiPath = apiPathOf(req, prefix);
    if (apiPath === null) continue;
    const results = specs.map((s) => ({ spec: s.name, result: problemsFor(s, req, apiPath, checkQuery) }));
    const ok = (r: (typeof results)[number]) => r.result !== "undocumented" && r.result.length === 0;
    const passed = mode === "any" ? results.some(ok) : results.every(ok);
    if (passed) continue;
    const details = results
      .filter((r) => !ok(r))
      .map((r) => `    [${r.spec}] ${r.result === "undocumented" ? "no documented operation matches" : r.result.join("; ")}`)
      .join("\n");
    offenders.push(`  ${req.method} ${req.path}${Object.keys(req.query).length ? "?" + new URLSearchParams(req.query).toString() : ""}\n${details}`);
  }
  if (offenders.length) {
    throw new Error(`${offenders.length} request(s) not documented in GitHub's OpenAPI (${specNames.join(", ")}, mode ${mode}):\n${offenders.join("\n")}`);
  }
}

// ---------------------------------------------------------------------------
// Response validation (checks the fake itself)
// ---------------------------------------------------------------------------

function typeOk(type: string, v: unknown): boolean {
  switch (type) {
    case "null":
      return v === null;
    case "string":
      return typeof v === "string";
    case "integer":
      return typeof v === "number" && Number.isInteger(v);
    case "number":
      return typeof v === "number";
    case "boolean":
      return typeof v === "boolean";
    case "array":
      return Array.isArray(v);
    case "object":
      return typeof v === "object" && v !== null && !Array.isArray(v);
    default:
      return true;
  }
}

export function validateAgainstSchema(doc: Json, schemaIn: Json, value: unknown, where = "$", depth = 0): string[] {
  const schema = deref(doc, schemaIn);
  if (!schema || typeof schema !== "object" || depth > 40) return [];
  if (value === null && (schema.nullable || (Array.isArray(schema.type) && schema.type.includes("null")))) return [];
  if (Array.isArray(schema.allOf)) {
    const errs = schema.allOf.flatMap((s: Json) => validateAgainstSchema(doc, s, value, where, depth + 1));
    if (errs.length) return errs;
  }
  for (const key of ["oneOf", "anyOf"]) {
    if (Array.isArray(schema[key])) {
      const branches = schema[key].map((s: Json) => validateAgainstSchema(doc, s, value, where, depth + 1));
      if (!branches.some((e: string[]) => e.length === 0)) {
        const best = branches.sort((a: string[], b: string[]) => a.length - b.length)[0];
        return [`${where}: matches none of ${key} (closest: ${best.slice(0, 5).join("; ")})`];
      }
    }
  }
  const types: string[] = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.length && !types.some((t) => typeOk(t, value))) {
    return [`${where}: expected ${types.join("|")}${schema.nullable ? "|null" : ""}, got ${value === null ? "null" : Array.isArray(value) ? "array" : typeof value}`];
  }
  const errors: string[] = [];
  if (Array.isArray(schema.enum) && value !== null && !schema.enum.includes(value)) {
    errors.push(`${where}: ${JSON.stringify(value)} not in enum ${JSON.stringify(schema.enum)}`);
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    for (const req of schema.required ?? []) {
      if (!(req in value)) errors.push(`${where}: missing required property "${req}"`);
    }
    for (const [k, sub] of Object.entries<Json>(schema.properties ?? {})) {
      if (k in value) errors.push(...validateAgainstSchema(doc, sub, (value as Record<string, unknown>)[k], `${where}.${k}`, depth + 1));
    }
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => errors.push(...validateAgainstSchema(doc, schema.items, item, `${where}[${i}]`, depth + 1)));
  }
  return errors;
}

/**
 * Throws unless every recorded /api/v3 JSON response with a 2xx status satisfies the documented
 * response schema of its operation (required properties, types, enums) in at least one spec.
 */
export function assertDocumentedResponses(requests: readonly RecordedRequest[], opts: Pick<CheckOptions, "specs" | "prefix"> = {}): void {
  const specs = (opts.specs ?? ["ghes-3.19", "api.github.com"]).map(loadSpec);
  const prefix = opts.prefix ?? "/api/v3";
  const offenders: string[] = [];
  for (const req of requests) {
    const apiPath = apiPathOf(req, prefix);
    if (apiPath === null || req.status < 200 || req.status >= 300 || req.responseBody === undefined) continue;
    const perSpec: string[] = [];
    let ok = false;
    for (const spec of specs) {
      const found = findOperation(spec, req.method, apiPath);
      if (!found) {
        perSpec.push(`[${spec.name}] undocumented`);
        continue;
      }
      const resp = deref(spec.doc, found.op.responses?.[String(req.status)] ?? found.op.responses?.default);
      const schema = resp?.content?.["application/json"]?.schema;
      if (!schema) {
        perSpec.push(`[${spec.name}] no JSON response documented for status ${req.status}`);
        continue;
      }
      const errs = validateAgainstSchema(spec.doc, schema, req.responseBody);
      if (errs.length === 0) {
        ok = true;
        break;
      }
      perSpec.push(`[${spec.name}] ${errs.slice(0, 15).join("\n      ")}`);
    }
    if (!ok) offenders.push(`  ${req.method} ${req.path} -> ${req.status}\n    ${perSpec.join("\n    ")}`);
  }
  if (offenders.length) throw new Error(`${offenders.length} response(s) do not match GitHub's documented schema:\n${offenders.join("\n")}`);
}
