/**
 * Errors a user can act on. `message` is shown to users (check run, comment, dashboard),
 * so it must say what is wrong and what to do, and must never contain secrets.
 */
export class BerthError extends Error {
  constructor(message: string, readonly code: string = 'berth_error') {
    super(message);
    this.name = new.target.name;
  }
}

/** Berth's own environment is incomplete or wrong. */
export class ConfigurationError extends BerthError {
  constructor(message: string) {
    super(message, 'configuration');
  }
}

/** `.github/berth.yml` (or the Dockerfile fallback) cannot be used. */
export class RepoConfigError extends BerthError {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly reason: string,
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${reason}`, 'repo_config');
  }
}

/** A step of a build or start failed; `step` names it, `logTail` holds its last output lines. */
export class StepFailedError extends BerthError {
  constructor(
    readonly step: string,
    message: string,
    readonly logTail: string = '',
  ) {
    super(message, 'step_failed');
  }
}

/** A newer commit superseded the one being built; not a failure. */
export class SupersededError extends BerthError {
  constructor(readonly sha: string) {
    super(`build of ${sha.slice(0, 7)} was superseded by a newer push`, 'superseded');
  }
}

/** A workspace is not in a state where the requested change is legal. */
export class IllegalTransitionError extends BerthError {
  constructor(
    readonly from: string,
    readonly to: string,
  ) {
    super(`a workspace cannot go from ${from} to ${to}`, 'illegal_transition');
  }
}
