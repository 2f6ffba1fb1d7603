import { BerthError } from './errors.js';

/**
 * Runs a process's `main` when the file is the entry point: a BerthError prints its message
 * (it is written for the user), anything else its stack; both exit 1. Returns nothing to await.
 */
export function runAsMain(moduleUrl: string, main: () => Promise<void>): void {
  if (moduleUrl !== `file://${process.argv[1]}`) return;
  main().catch((err) => {
    console.error(err instanceof BerthError ? `[berth] ${err.message}` : err);
    process.exit(1);
  });
}

/** Closes cleanly on Ctrl-C and on the SIGTERM of a service manager, then exits. */
export function closeOnSignals(close: () => Promise<void>): void {
  const stop = async () => {
    await close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
