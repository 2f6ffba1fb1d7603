/**
 * Validation of a compose file against the Compose Specification's own JSON schema
 * (lib/compose/compose-spec.json, vendored from github.com/compose-spec/compose-spec,
 * schema/compose-spec.json, Apache-2.0), so Berth accepts and refuses what `docker compose` does.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import schema from './compose-spec.json' with { type: 'json' };
import { errorAt, type ComposeDocument, type Path } from './documents.js';

let validator: ValidateFunction | undefined;

function validate(): ValidateFunction {
  // the schema declares draft-07 by URL; ajv's default dialect is draft-07 already
  validator ??= new Ajv({ allErrors: true, strict: false, validateSchema: false }).compile(schema as object);
  return validator;
}

/** Throws a RepoConfigError (file, line, reason) for the most specific schema violation of `value`. */
export function assertComposeSchema(doc: ComposeDocument, value: unknown): void {
  const check = validate();
  if (check(value)) return;
  const best = mostSpecific(check.errors ?? []);
  const path = pointerPath(best.instancePath);
  const reason = describe(best);
  // located in this file only: each file is checked before the merge
  throw errorAt([doc], best.keyword === 'additionalProperties' ? [...path, String(best.params.additionalProperty)] : path, reason);
}

const KEYWORD_RANK: Record<string, number> = { additionalProperties: 0, enum: 1, required: 2, pattern: 3, format: 3, type: 4, oneOf: 9, anyOf: 9 };

/** The deepest error, and of equally deep ones the most telling (an unknown key over "must match oneOf"). */
function mostSpecific(errors: ErrorObject[]): ErrorObject {
  return [...errors].sort((a, b) => {
    const depth = pointerPath(b.instancePath).length - pointerPath(a.instancePath).length;
    if (depth !== 0) return depth;
    return (KEYWORD_RANK[a.keyword] ?? 5) - (KEYWORD_RANK[b.keyword] ?? 5);
  })[0]!;
}

function describe(e: ErrorObject): string {
  switch (e.keyword) {
    case 'additionalProperties':
      return `unknown key "${e.params.additionalProperty}" (not in the Compose Specification)`;
    case 'enum':
      return `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'type':
      return `must be ${String(e.params.type).replace(',', ' or ')}`;
    case 'required':
      return `needs the key "${e.params.missingProperty}"`;
    default:
      return e.message ?? 'does not match the Compose Specification';
  }
}

function pointerPath(pointer: string): Path {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}
