/**
 * Compose's variable interpolation (`${VAR}`, `$VAR`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`, `${VAR+alt}`, `$$`), with values from the
 * repository's `.env` file only: never from Berth's own environment, which holds its secrets.
 *
 * Inside a service's `environment` a variable without a value is not an error: it becomes a
 * `${{ secrets.NAME }}` reference that the start fills from the repository's variables, and a
 * `:?` one is also reported as required (the build fails listing it when it has no value there).
 * Elsewhere (image, ports, build args...) it is empty, as compose makes it, and `:?` fails.
 */

export type InterpolationMode = 'environment' | 'other';

export interface InterpolationEvents {
  /** a `${VAR:?}` without a value outside `environment`: the caller fails with file and line */
  missingRequired(name: string, message: string): never;
  /** a `${VAR:?}` without a value inside `environment` */
  required(name: string): void;
  /** a variable without a value outside `environment`, used as '' */
  unset(name: string): void;
  /** `${` that does not close or has no valid name */
  invalid(reason: string): never;
}

export function secretReference(name: string): string {
  return `\${{ secrets.${name} }}`;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/** Interpolates one string. */
export function interpolate(text: string, vars: Record<string, string>, mode: InterpolationMode, on: InterpolationEvents): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      const end = closingBrace(text, i + 2);
      if (end < 0) on.invalid(`"${text}": \${ is not closed by }`);
      out += substitute(text.slice(i + 2, end), vars, mode, on);
      i = end + 1;
      continue;
    }
    const bare = NAME.exec(text.slice(i + 1));
    if (bare) {
      out += valueOf(bare[0], vars, mode, on);
      i += 1 + bare[0].length;
      continue;
    }
    out += '$'; // a lone `$` (e.g. "5$") stays as compose leaves it
    i++;
  }
  return out;
}

function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let j = from; j < text.length; j++) {
    if (text[j] === '$' && text[j + 1] === '{') {
      depth++;
      j++;
    } else if (text[j] === '}' && --depth === 0) return j;
  }
  return -1;
}

function valueOf(name: string, vars: Record<string, string>, mode: InterpolationMode, on: InterpolationEvents): string {
  if (Object.hasOwn(vars, name)) return vars[name]!;
  if (mode === 'environment') return secretReference(name);
  on.unset(name);
  return '';
}

function substitute(inner: string, vars: Record<string, string>, mode: InterpolationMode, on: InterpolationEvents): string {
  const m = NAME.exec(inner);
  if (!m) on.invalid(`"\${${inner}}" is not a variable: names are letters, digits and _`);
  const name = m[0];
  const rest = inner.slice(name.length);
  if (rest === '') return valueOf(name, vars, mode, on);
  const op = /^(:?[-?+])/.exec(rest)?.[1];
  if (!op) on.invalid(`"\${${inner}}": expected :-, -, :?, ?, :+ or + after ${name}`);
  const arg = rest.slice(op.length);
  const isSet = Object.hasOwn(vars, name);
  const hasValue = isSet && (op.startsWith(':') ? vars[name] !== '' : true);
  const nested = () => interpolate(arg, vars, mode, on);
  switch (op.replace(':', '')) {
    case '-':
      return hasValue ? vars[name]! : nested();
    case '+':
      return hasValue ? nested() : '';
    default: {
      // '?': required
      if (hasValue) return vars[name]!;
      if (mode === 'environment') {
        on.required(name);
        return secretReference(name);
      }
      const message = nested();
      return on.missingRequired(name, message);
    }
  }
}
