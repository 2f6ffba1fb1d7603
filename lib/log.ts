/**
 * Berth's one logger: pino, as Probot uses it, so Probot's own lines (webhooks, Octokit
 * requests) and Berth's come out in one stream and one format.
 *
 * Probot's variables work as Probot documents them: LOG_LEVEL (trace … fatal, and silent),
 * LOG_FORMAT (json | pretty), LOG_LEVEL_IN_STRING (level as "info" instead of 30),
 * LOG_MESSAGE_KEY (default msg). Without LOG_FORMAT the format follows the output: pretty in
 * a terminal, JSON lines when stdout is a file, a pipe or a log collector, or NODE_ENV=production.
 *
 * Messages never carry secrets: tokens, keys and the webhook secret are not passed to it, and
 * pino's redaction removes the usual places a token hides in an error (request headers).
 */
import { Writable } from 'node:stream';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';
import type { PrismaClient } from './db/client.js';

export type { Logger } from 'pino';

export type LogFormat = 'json' | 'pretty';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface LoggerSettings {
  level?: LogLevel;
  format?: LogFormat;
  levelInString?: boolean;
  messageKey?: string;
  /** where lines go; default stdout */
  destination?: DestinationStream;
}

/** The settings Probot reads from the environment, with Berth's default format. */
export function loggerSettingsFromEnv(env: NodeJS.ProcessEnv = process.env, level?: LogLevel): LoggerSettings {
  const format = env.LOG_FORMAT === 'json' || env.LOG_FORMAT === 'pretty' ? env.LOG_FORMAT : undefined;
  return {
    level: level ?? (env.LOG_LEVEL as LogLevel | undefined) ?? 'info',
    format: format ?? (process.stdout.isTTY && env.NODE_ENV !== 'production' ? 'pretty' : 'json'),
    levelInString: env.LOG_LEVEL_IN_STRING === 'true',
    messageKey: env.LOG_MESSAGE_KEY || undefined,
  };
}

export function createLogger(settings: LoggerSettings = loggerSettingsFromEnv()): Logger {
  const messageKey = settings.messageKey ?? 'msg';
  const options: LoggerOptions = {
    name: 'berth',
    level: settings.level ?? 'info',
    messageKey,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'request.headers.authorization', 'err.request.headers.authorization', 'err.headers.authorization'], censor: '[redacted]' },
    ...(settings.levelInString ? { formatters: { level: (label: string) => ({ level: label }) } } : {}),
  };
  if (settings.format === 'pretty' && !settings.destination) {
    return pino(options, pretty({ messageKey, ignore: 'pid,hostname,name', translateTime: 'SYS:HH:MM:ss.l', singleLine: true, sync: true }));
  }
  return pino(options, settings.destination ?? pino.destination({ dest: 1, sync: true }));
}

/** A logger whose lines are kept in memory as objects (tests read them). */
export function memoryLogger(level: LogLevel = 'debug'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const text of String(chunk).split('\n')) if (text.trim()) lines.push(JSON.parse(text) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level, format: 'json', destination }), lines };
}

/** `(message) => void` for code that logs plain sentences (deps.log). */
export const sentences = (logger: Logger) => (message: string) => logger.info(message);

/**
 * The logger of the process that owns a database client. transition() and other shared code
 * get the client, not the deps, from every caller; whoever creates the client says where its
 * state changes are logged. Keyed by client so several Berths in one test process keep apart.
 */
const byClient = new WeakMap<object, Logger>();
const quiet = pino({ level: 'silent' });

export function attachLogger(db: PrismaClient, logger: Logger): void {
  byClient.set(db, logger);
}

export function loggerOf(db: PrismaClient): Logger {
  return byClient.get(db) ?? quiet;
}

/** An error's message without a stack or request details, for a log field a person reads. */
export const reasonOf = (err: unknown): string => String((err as Error)?.message ?? err).trim().split('\n').pop()!.slice(0, 500);
