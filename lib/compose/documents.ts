/**
 * The compose files of a project as parsed YAML, kept with their line counters so that any
 * problem found later (in the merged model) is reported at the file and line that said it.
 */
import { LineCounter, isMap, isScalar, parseDocument, type Document, type Node } from 'yaml';
import { RepoConfigError } from '../errors.js';

export interface ComposeDocument {
  /** path in the repository, e.g. `compose.yaml` */
  file: string;
  doc: Document;
  counter: LineCounter;
}

export type Path = (string | number)[];

export function parseComposeFile(file: string, text: string): ComposeDocument {
  const counter = new LineCounter();
  // merge keys (`<<: *defaults`) are common in compose files
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new RepoConfigError(file, counter.linePos(e.pos[0]).line, `invalid YAML: ${e.message.split('\n')[0]}`);
  }
  if (doc.contents !== null && !isMap(doc.contents)) throw new RepoConfigError(file, 1, 'a compose file is a mapping with a `services` key');
  return { file, doc, counter };
}

/** How many leading keys of `path` exist in `d`, and the line of the deepest one. */
function deepest(d: ComposeDocument, path: Path): { depth: number; line?: number } {
  for (let n = path.length; n >= 0; n--) {
    // a mapping's entry is reported at its key (`web:`), not at its value's first line
    const parent = n > 0 ? d.doc.getIn(path.slice(0, n - 1), true) : undefined;
    const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(path[n - 1])) : undefined;
    const key = pair && isScalar(pair.key) ? pair.key : undefined;
    if (key?.range) return { depth: n, line: d.counter.linePos(key.range[0]).line };
    const node = d.doc.getIn(path.slice(0, n), true) as Node | undefined;
    if (node && typeof node === 'object' && node.range) return { depth: n, line: d.counter.linePos(node.range[0]).line };
  }
  return { depth: -1 };
}

/**
 * The file and line that say `path`: the file that holds the most of it, later files first
 * (an override file's value is the one in force).
 */
export function locate(docs: ComposeDocument[], path: Path): { file: string; line?: number } {
  let best: { file: string; line?: number; depth: number } = { file: docs[0]!.file, depth: -1 };
  for (let i = docs.length - 1; i >= 0; i--) {
    const found = deepest(docs[i]!, path);
    if (found.depth > best.depth) best = { file: docs[i]!.file, line: found.line, depth: found.depth };
  }
  return { file: best.file, line: best.line };
}

/** A RepoConfigError at `path`, with the path spelled as in berth.yml errors (`services.web.ports`). */
export function errorAt(docs: ComposeDocument[], path: Path, reason: string): RepoConfigError {
  const { file, line } = locate(docs, path);
  return new RepoConfigError(file, line, `${path.length ? `${path.join('.')}: ` : ''}${reason}`);
}
