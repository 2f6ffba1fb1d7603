/**
 * The images a Dockerfile copies files from without building on them: `COPY --from=<image>`,
 * `ADD --from`, `RUN --mount=…,from=<image>`. Variables are resolved the way the builder does
 * (build args over ARG defaults), so `ARG X=berth/…` cannot hide a reference. Stage names and
 * indexes come back too; the caller only looks at what names an image it must not hand out.
 */
export function copySources(dockerfile: string, args: Record<string, string>): string[] {
  const text = dockerfile.replace(/\\\r?\n/g, ' ');
  const vars: Record<string, string> = {};
  const sources: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const arg = /^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?/i.exec(line);
    if (arg) {
      vars[arg[1]!] = args[arg[1]!] ?? unquote(arg[2] ?? '');
      continue;
    }
    if (!/^(COPY|ADD|RUN)\s/i.test(line)) continue;
    for (const m of line.matchAll(/--(?:from=(\S+)|mount=(\S+))/gi)) {
      const value = m[1] ?? /(?:^|,)from=([^,\s]+)/i.exec(m[2] ?? '')?.[1];
      if (value) sources.push(substitute(unquote(value), vars));
    }
  }
  return sources;
}

function unquote(v: string): string {
  return v.replace(/^(["'])(.*)\1$/, '$2');
}

function substitute(v: string, vars: Record<string, string>): string {
  return v.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, a, b) => vars[a ?? b] ?? '');
}
