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

/**
 * True when `err` says PostgreSQL or Redis cannot be reached right now (down, restarting), as
 * opposed to a fault of Berth or of the request: worth a 503 and "try again", not a 500.
 */
export function isBackendUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string; cause?: { code?: string }; meta?: { driverAdapterError?: { cause?: { kind?: string; code?: string } } } } | undefined;
  // Prisma: P1001 can't reach the server, P1017 server closed the connection, P2024 pool timeout
  if (e?.code && ['P1001', 'P1002', 'P1017', 'P2024', 'ECONNREFUSED', 'ECONNRESET'].includes(e.code)) return true;
  if (e?.cause?.code === 'ECONNREFUSED') return true;
  // What the pg adapter saw: a query in flight when PostgreSQL shuts down fails with 57P01
  // ("terminating connection due to administrator command"), class 08 is a lost connection,
  // 57P03 "the database system is starting up".
  const driver = e?.meta?.driverAdapterError?.cause;
  if (driver?.kind && ['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout'].includes(driver.kind)) return true;
  if (driver?.code && /^(57P0[123]|08)/.test(driver.code)) return true;
  return /ECONNREFUSED|ConnectionClosed|Connection is closed|Connection terminated|terminating connection due to administrator command|Stream isn't writeable|Can't reach database server|the database system is (starting up|shutting down)/i.test(
    e?.message ?? '',
  );
}
