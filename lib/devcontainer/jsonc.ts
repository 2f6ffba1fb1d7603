import { findNodeAtLocation, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import { RepoConfigError } from '../errors.js';

/**
 * devcontainer.json is "JSON with comments" (and trailing commas, as VS Code writes it): read
 * with jsonc-parser, keeping the syntax tree so every later error can name its line.
 */
export interface JsoncDocument {
  file: string;
  value: unknown;
  /** the line (1-based) of the deepest part of `path` that exists, for messages */
  lineOf(path: (string | number)[]): number | undefined;
  error(path: (string | number)[], reason: string): RepoConfigError;
}

export function parseJsonc(text: string, file: string): JsoncDocument {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false, allowEmptyContent: false });
  const lineAt = (offset: number) => text.slice(0, offset).split('\n').length;
  if (errors.length > 0 || !root) {
    const first = errors[0];
    const reason = first ? describe(printParseErrorCode(first.error)) : 'the file is empty';
    throw new RepoConfigError(file, first ? lineAt(first.offset) : 1, `invalid JSON: ${reason}`);
  }
  const lineOf = (path: (string | number)[]): number | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const node: Node | undefined = findNodeAtLocation(root, path.slice(0, n));
      if (node) {
        // a property's value: point at its key, where a reader looks
        const at = node.parent?.type === 'property' ? node.parent : node;
        return lineAt(at.offset);
      }
    }
    return undefined;
  };
  return {
    file,
    value: toValue(root, (key, offset) => {
      throw new RepoConfigError(file, lineAt(offset), `"${key}" is given twice; keep one`);
    }),
    lineOf,
    error: (path, reason) => new RepoConfigError(file, lineOf(path), reason),
  };
}

/** getNodeValue keeps the last of duplicate keys silently; JSON readers differ, so refuse them */
function toValue(node: Node, duplicate: (key: string, offset: number) => never): unknown {
  switch (node.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const prop of node.children ?? []) {
        const [key, value] = prop.children ?? [];
        if (!key || !value) continue;
        if (Object.hasOwn(out, String(key.value))) duplicate(String(key.value), key.offset);
        // defineProperty: a "__proto__" key is a key like any other, never the object's prototype
        Object.defineProperty(out, String(key.value), { value: toValue(value, duplicate), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    case 'array':
      return (node.children ?? []).map((child) => toValue(child, duplicate));
    default:
      return node.value;
  }
}

function describe(code: string): string {
  const words: Record<string, string> = {
    InvalidSymbol: 'unexpected character',
    InvalidNumberFormat: 'invalid number',
    PropertyNameExpected: 'a property name (in double quotes) was expected',
    ValueExpected: 'a value was expected',
    ColonExpected: 'a colon was expected',
    CommaExpected: 'a comma was expected',
    CloseBraceExpected: 'a closing } was expected',
    CloseBracketExpected: 'a closing ] was expected',
    EndOfFileExpected: 'the file should end here',
    InvalidCommentToken: 'invalid comment',
    UnexpectedEndOfComment: 'a comment is not closed',
    UnexpectedEndOfString: 'a string is not closed',
    UnexpectedEndOfNumber: 'a number is cut off',
    InvalidUnicode: 'invalid unicode escape',
    InvalidEscapeCharacter: 'invalid escape character',
    InvalidCharacter: 'invalid character',
  };
  return words[code] ?? code;
}
