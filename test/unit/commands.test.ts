import { describe, expect, it } from 'vitest';
import { MAX_COMMANDS, parseCommands } from '../../app/commands/parse.js';

describe('parseCommands', () => {
  it('finds long and short forms at the start of a line', () => {
    expect(parseCommands('/berth stop')).toEqual([{ verb: 'stop' }]);
    expect(parseCommands('thanks!\n/refresh please\n')).toEqual([{ verb: 'refresh' }]);
    expect(parseCommands('  /Berth REBUILD')).toEqual([{ verb: 'rebuild' }]);
    expect(parseCommands('/start')).toEqual([{ verb: 'start' }]);
    expect(parseCommands('/berth')).toEqual([{ verb: 'help' }]);
  });

  it('reads `/berth delete --force`', () => {
    expect(parseCommands('/berth delete')).toEqual([{ verb: 'delete' }]);
    expect(parseCommands('/berth delete --force')).toEqual([{ verb: 'delete', force: true }]);
    expect(parseCommands('/berth delete --forced')).toEqual([{ verb: 'delete' }]);
  });

  it('reports unknown verbs', () => {
    expect(parseCommands('/berth explode')).toEqual([{ unknown: 'explode' }]);
  });

  it('ignores commands that are not at the start of a line, quoted or in code', () => {
    expect(parseCommands('please /stop this')).toEqual([]);
    expect(parseCommands('> /stop')).toEqual([]);
    expect(parseCommands('> /berth delete\nok')).toEqual([]);
    expect(parseCommands('```\n/berth delete\n```')).toEqual([]);
    expect(parseCommands('~~~sh\n/stop\n~~~\n/start')).toEqual([{ verb: 'start' }]);
    expect(parseCommands('    /berth delete')).toEqual([]);
    expect(parseCommands('/stopwatch is a tool')).toEqual([]);
  });

  it('takes several commands in order and caps huge comments', () => {
    expect(parseCommands('/berth stop\n/berth start')).toEqual([{ verb: 'stop' }, { verb: 'start' }]);
    const many = Array.from({ length: 500 }, (_, i) => (i % 2 ? 'text line' : '/berth status')).join('\n');
    expect(parseCommands(many)).toHaveLength(MAX_COMMANDS);
  });
});
