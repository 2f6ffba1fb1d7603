/**
 * The Docker engine's errors, mapped to what Berth says: a 404 as "not there", the daemon's own
 * words without docker-modem's prefix, and the typed errors users see.
 */
import { StepFailedError } from '../../lib/errors.js';

export function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number } | null)?.statusCode;
}

/**
 * Resolves to undefined instead of rejecting when Docker answers 404, or 409 "removal … is
 * already in progress": a finished task is removed in the background (runTask), so another
 * removal of the same container (removeTasks, removeWorkspace) may find it already going.
 */
export async function ignoreNotFound<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    if (statusOf(err) === 409 && /already in progress/.test(dockerReason(err))) return undefined;
    throw err;
  }
}

/** The daemon's own words, without docker-modem's "(HTTP code 400) unexpected - " prefix. */
export function dockerReason(err: unknown): string {
  const e = err as { json?: { message?: string } | null; message?: string } | null;
  const text = e?.json?.message ?? e?.message ?? String(err);
  return text.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

export function builtByBerth(ref: string): StepFailedError {
  return new StepFailedError(
    'build',
    `image ${ref} is an image Berth built for a workspace; an image: service must name an image from a registry (or one the operator provides), and a service built from this repository uses build: instead`,
  );
}

export function abortError(): Error {
  const err = new Error('aborted');
  err.name = 'AbortError';
  return err;
}
