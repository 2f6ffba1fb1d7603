import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, loggerSettingsFromEnv, memoryLogger } from '../../lib/log.js';

/** A logger writing into a string, as stdout would receive it. */
function capture(settings: Parameters<typeof createLogger>[0]) {
  let text = '';
  const destination = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { logger: createLogger({ ...settings, destination }), text: () => text };
}

describe('lib/log.ts: the one logger', () => {
  it('follows Probot\'s variables: LOG_FORMAT, LOG_LEVEL, LOG_LEVEL_IN_STRING, LOG_MESSAGE_KEY', () => {
    expect(loggerSettingsFromEnv({ LOG_FORMAT: 'json', LOG_LEVEL: 'debug', LOG_LEVEL_IN_STRING: 'true', LOG_MESSAGE_KEY: 'message' })).toEqual({
      level: 'debug',
      format: 'json',
      levelInString: true,
      messageKey: 'message',
    });
    // production means JSON even in a terminal
    expect(loggerSettingsFromEnv({ NODE_ENV: 'production' }).format).toBe('json');
    expect(loggerSettingsFromEnv({ LOG_FORMAT: 'pretty', NODE_ENV: 'production' }).format).toBe('pretty');
    // Berth's validated LOG_LEVEL wins over the raw environment
    expect(loggerSettingsFromEnv({ LOG_LEVEL: 'trace' }, 'warn').level).toBe('warn');
  });

  it('writes one JSON object per line with time, level and message; the level filters', () => {
    const { logger, text } = capture({ level: 'info', format: 'json' });
    logger.debug('not shown');
    logger.info({ workspace: 'main-shop', durationMs: 12 }, 'build finished');
    const lines = text().trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'build finished', workspace: 'main-shop', durationMs: 12, name: 'berth' });
    expect(Date.parse(lines[0].time)).not.toBeNaN();
  });

  it('LOG_LEVEL_IN_STRING and LOG_MESSAGE_KEY change the fields as in Probot', () => {
    const { logger, text } = capture({ level: 'info', format: 'json', levelInString: true, messageKey: 'message' });
    logger.warn('careful');
    expect(JSON.parse(text())).toMatchObject({ level: 'warn', message: 'careful' });
  });

  it('never writes an authorization header it was handed in an error or request', () => {
    const { logger, text } = capture({ level: 'info', format: 'json' });
    logger.error({ err: Object.assign(new Error('HTTP 401'), { request: { headers: { authorization: 'token ghs_secret123' } } }), req: { headers: { authorization: 'Bearer abc', cookie: 'berth_session=xyz' } } }, 'GitHub said no');
    expect(text()).not.toContain('ghs_secret123');
    expect(text()).not.toContain('Bearer abc');
    expect(text()).not.toContain('berth_session=xyz');
    expect(text()).toContain('[redacted]');
  });

  it('memoryLogger keeps parsed lines for tests', () => {
    const { logger, lines } = memoryLogger('info');
    logger.info({ to: 'running' }, 'state change');
    expect(lines).toEqual([expect.objectContaining({ msg: 'state change', to: 'running' })]);
  });
});
