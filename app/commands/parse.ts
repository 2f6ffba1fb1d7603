/**
 * Slash commands in pull request comments: `/berth <verb>` or the short forms `/stop`,
 * `/start`, `/refresh`, at the start of a line. Lines in quotes (`> /stop`) and fenced or
 * indented code blocks are ignored, so quoting someone never triggers anything.
 */
export const VERBS = ['stop', 'start', 'refresh', 'rebuild', 'delete', 'status', 'help', 'approve', 'reset'] as const;
export type Verb = (typeof VERBS)[number];
const SHORT: Record<string, Verb> = { stop: 'stop', start: 'start', refresh: 'refresh' };

/**
 * `sha`: the commit named after `/berth approve` (checked when the command runs);
 * `withSecrets`: `/berth approve --with-secrets`, which also gives that commit the secrets
 */
/** `force`: `/berth delete --force` (delete even when the disk holds work found nowhere else) */
/** `beforeMigrate`: `/berth reset --before-migrate` (the data as it was before the newest migrate, not the base disk's) */
export type ParsedCommand = { verb: Verb; sha?: string; withSecrets?: boolean; force?: boolean; beforeMigrate?: boolean } | { unknown: string };

export const MAX_COMMANDS = 5;

export function parseCommands(body: string): ParsedCommand[] {
  const found: ParsedCommand[] = [];
  let fence: string | null = null;
  for (const raw of body.split(/\r?\n/)) {
    const fenceMatch = /^\s{0,3}(`{3,}|~{3,})/.exec(raw);
    if (fenceMatch) {
      if (!fence) fence = fenceMatch[1]![0]!;
      else if (fenceMatch[1]![0] === fence) fence = null;
      continue;
    }
    if (fence) continue;
    if (/^( {4,}|\t)/.test(raw)) continue; // indented code block
    const line = raw.trim();
    if (line.startsWith('>')) continue;
    const m = /^\/(berth)(?:\s+(\S+))?(?:\s+(\S+))?(?:\s+(\S+))?|^\/(stop|start|refresh)(?=\s|$)/i.exec(line);
    if (!m) continue;
    if (m[5]) found.push({ verb: SHORT[m[5].toLowerCase()]! });
    else {
      const verb = (m[2] ?? 'help').toLowerCase();
      // `/berth approve [--with-secrets] [sha]`, the flag before or after the commit
      const args = [m[3], m[4]].filter((a): a is string => Boolean(a));
      const withSecrets = args.some((a) => a.toLowerCase() === '--with-secrets');
      const sha = args.find((a) => a.toLowerCase() !== '--with-secrets');
      if (verb === 'approve' && (sha || withSecrets)) found.push({ verb, ...(sha ? { sha: sha.slice(0, 64) } : {}), ...(withSecrets ? { withSecrets } : {}) });
      else if (verb === 'delete' && m[3]?.toLowerCase() === '--force') found.push({ verb, force: true });
      else if (verb === 'reset' && m[3]?.toLowerCase() === '--before-migrate') found.push({ verb, beforeMigrate: true });
      else found.push((VERBS as readonly string[]).includes(verb) ? { verb: verb as Verb } : { unknown: verb.slice(0, 40) });
    }
    if (found.length >= MAX_COMMANDS) break;
  }
  return found;
}

export const HELP_TEXT = `**Berth commands** (at the start of a line in a pull request comment; you need write access):

| Command | What it does |
|---|---|
| \`/berth stop\` or \`/stop\` | Stop the workspace; its disk is kept |
| \`/berth start\` or \`/start\` | Start it again on the newest successful build |
| \`/berth refresh\` or \`/refresh\` | Build the branch's newest commit and restart on it, keeping the disk |
| \`/berth rebuild\` | Rebuild without Docker's cache and restart |
| \`/berth delete\` | Delete the workspace, containers and disk; when the disk holds work found nowhere else (uncommitted files, unpushed commits), Berth lists it and deletes nothing |
| \`/berth delete --force\` | Delete it even so |
| \`/berth reset\` | Put the workspace's data (services' \`data:\`, compose volumes) back to a fresh copy of the base disk (the default branch, migrated and seeded) and restart; the checkout and uncommitted work are left alone |
| \`/berth reset --before-migrate\` | Put the data back to the snapshot taken before the newest migrate (undoes a migration) and restart without migrating |
| \`/berth status\` | Check what is really running and update this pull request |
| \`/berth approve\` | Build a fork's pull request at the commit it had when you wrote the comment (a later push needs approval again) |
| \`/berth approve <sha>\` | The same, naming the commit you reviewed (at least 7 characters; it must still be the head) |
| \`/berth approve --with-secrets\` | The same, and the workspace gets the repository's secrets for that commit (maintainers and admins only) |
| \`/berth help\` | Show this help |`;
