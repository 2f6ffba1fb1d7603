/**
 * Which commit of a fork's pull request a `/berth approve` comment approves. Pure: the caller
 * brings the heads GitHub reported (ForkHead rows), the comment's time and the head GitHub
 * shows now.
 *
 * A maintainer approves what they looked at. Without a commit in the comment that is the head
 * of the pull request when the comment was written: the newest head GitHub reported strictly
 * before the comment's created_at (both times are GitHub's, so clocks cannot disagree). It is
 * approved only when it is still the head now and no head was reported at or after the
 * comment; otherwise the fork moved and the new commit needs its own approval. When Berth
 * has no report from before the comment (a pull request opened before Berth was installed,
 * a webhook that never came), it cannot tell what the maintainer saw and asks for the commit.
 * `/berth approve <sha>` (7 to 40 hex digits) approves exactly that commit, and only while it
 * is the head, since a build always checks out the pull request's head.
 */
export interface ReportedHead {
  sha: string;
  seenAt: Date;
}

export type ApprovalDecision =
  | { ok: true; sha: string }
  /** the head moved after the comment: `seen` is the head the comment saw, `now` the current one */
  | { ok: false; why: 'moved'; seen: string; now: string }
  /** the comment names a commit that is not the head */
  | { ok: false; why: 'not-head'; asked: string; now: string }
  /** Berth does not know the head at the comment's time */
  | { ok: false; why: 'unknown'; now: string }
  /** the argument is not a commit sha */
  | { ok: false; why: 'bad-sha'; asked: string };

export const SHA_PREFIX = /^[0-9a-f]{7,40}$/;

export function decideApproval(opts: { heads: ReportedHead[]; commentAt?: Date; currentHead: string; asked?: string }): ApprovalDecision {
  const now = opts.currentHead.toLowerCase();
  if (opts.asked !== undefined) {
    const asked = opts.asked.toLowerCase();
    if (!SHA_PREFIX.test(asked)) return { ok: false, why: 'bad-sha', asked: opts.asked.slice(0, 40) };
    return now.startsWith(asked) ? { ok: true, sha: now } : { ok: false, why: 'not-head', asked, now };
  }
  if (!opts.commentAt) return { ok: false, why: 'unknown', now };
  const at = opts.commentAt.getTime();
  const before = opts.heads.filter((h) => h.seenAt.getTime() < at).sort((a, b) => a.seenAt.getTime() - b.seenAt.getTime());
  const seen = before.at(-1)?.sha.toLowerCase();
  if (!seen) return { ok: false, why: 'unknown', now };
  const reportedSince = opts.heads.some((h) => h.seenAt.getTime() >= at);
  if (seen !== now || reportedSince) return { ok: false, why: 'moved', seen, now };
  return { ok: true, sha: now };
}

const short = (sha: string) => sha.slice(0, 7);

/** The reply to an approval that approved nothing: what happened and the exact comment that works. */
export function refusalText(d: Exclude<ApprovalDecision, { ok: true }>, forkLabel: string): string {
  switch (d.why) {
    case 'moved':
      if (d.seen === d.now) {
        return (
          `⚠️ Nothing was approved or built: ${forkLabel} pushed after your comment and the head came back to \`${short(d.now)}\`. ` +
          `Make sure it is the commit you reviewed, then comment \`/berth approve ${short(d.now)}\`.`
        );
      }
      return (
        `⚠️ Nothing was approved or built: the head of this pull request moved. When your comment was written it was \`${short(d.seen)}\`, ` +
        `and ${forkLabel} has pushed since; the head is now \`${short(d.now)}\`, which nobody approved. ` +
        `Review it, then comment \`/berth approve ${short(d.now)}\` to build it.`
      );
    case 'not-head':
      return (
        `⚠️ Nothing was approved or built: \`${d.asked.slice(0, 12)}\` is not the head of this pull request; the head is \`${short(d.now)}\`. ` +
        `Berth only builds the head: review it, then comment \`/berth approve ${short(d.now)}\`.`
      );
    case 'unknown':
      return (
        `⚠️ Nothing was approved or built: Berth cannot tell which commit was the head when your comment was written. ` +
        `The head is now \`${short(d.now)}\`: review it, then comment \`/berth approve ${short(d.now)}\`.`
      );
    case 'bad-sha':
      return `⚠️ Nothing was approved: \`${d.asked}\` is not a commit. Comment \`/berth approve\` followed by the commit's sha (at least 7 characters).`;
  }
}
