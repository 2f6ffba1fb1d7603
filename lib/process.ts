import { BerthError } from './errors.js';

/**
 * Runs a process's `main` when the file is the entry point: a BerthError prints its message
 * (it is written for the user), anything else its stack; both exit 1. Returns nothing to await.
 */
export function runAsMain(moduleUrl: string, main: () => Promise<void>): void {
  if (moduleUrl !== `file://${process.argv[1]}`) return;
  // A rejected promise nobody handles ends a Node process, and with it every preview and IDE.
  // Requests and jobs handle their own failures; this is the last line behind them: a stray
  // one is reported as the bug it is, and Berth keeps serving.
  process.on('unhandledRejection', (reason) => {
    console.error('[berth] a failure nothing handled (a bug; Berth keeps running):', String(reason instanceof Error ? reason.stack : reason).slice(0, 2000));
  });
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
