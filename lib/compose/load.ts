/**
 * A compose project's files read into one model: each file parsed, interpolated with the
 * repository's `.env`, checked against the Compose Specification, then merged in order.
 */
import { parse as parseDotEnv } from 'dotenv';
import { RepoConfigError } from '../errors.js';
import { errorAt, parseComposeFile, type ComposeDocument, type Path } from './documents.js';
import { interpolate, type InterpolationMode } from './interpolate.js';
import { mergeCompose } from './merge.js';
import { assertComposeSchema } from './schema.js';

export interface ComposeFileText {
  /** path in the repository */
  file: string;
  text: string;
}

export interface LoadedCompose {
  docs: ComposeDocument[];
  /** the merged, interpolated model (plain data) */
  model: Record<string, unknown>;
  /** variables of `${VAR:?}` in `environment` values that had no value in .env */
  required: string[];
  /** variables used outside `environment` that had no value (empty strings now), with where */
  unset: { name: string; path: Path }[];
}

/** `environment` values of a service keep missing variables as references (interpolate.ts) */
function modeOf(path: Path): InterpolationMode {
  return path[0] === 'services' && path[2] === 'environment' && path.length >= 4 ? 'environment' : 'other';
}

export function loadCompose(files: ComposeFileText[], dotEnv?: ComposeFileText): LoadedCompose {
  const vars = dotEnv ? parseDotEnv(dotEnv.text) : {};
  const docs = files.map((f) => parseComposeFile(f.file, f.text));
  const required = new Set<string>();
  const unset: { name: string; path: Path }[] = [];
  let model: Record<string, unknown> = {};
  for (const d of docs) {
    const walk = (v: unknown, path: Path): unknown => {
      if (typeof v === 'string') {
        const at = (reason: string): never => {
          throw errorAt([d], path, reason);
        };
        return interpolate(v, vars, modeOf(path), {
          missingRequired: (name, message) => at(`${name} is required${message ? ` (${message})` : ''} but has no value: set it in the repository's .env file`),
          required: (name) => required.add(name),
          unset: (name) => unset.push({ name, path }),
          invalid: (reason) => at(`invalid interpolation: ${reason}`),
        });
      }
      if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
      if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, [...path, k])]));
      return v;
    };
    const value = walk(d.doc.toJS() ?? {}, []) as Record<string, unknown>;
    assertComposeSchema(d, value);
    model = mergeCompose(model, value);
  }
  if (!model.services || Object.keys(model.services as object).length === 0) {
    throw new RepoConfigError(docs[0]!.file, 1, 'no services: a compose file for Berth needs at least one service under `services:`');
  }
  return { docs, model, required: [...required].sort(), unset };
}
