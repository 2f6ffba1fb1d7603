import { describe, expect, it } from 'vitest';
import { dotfilesProblem } from '../../app/dashboard/settings.js';
import { sameHost, sameRepository } from '../../app/ide/git-credentials.js';

const GITHUB = { protocol: 'https', host: 'github.com' };

describe('a dotfiles repository on Your settings', () => {
  it('takes a repository on GitHub, with or without .git', () => {
    expect(dotfilesProblem('https://github.com/bob/dotfiles', GITHUB)).toBeNull();
    expect(dotfilesProblem('https://github.com/bob/dot.files.git', GITHUB)).toBeNull();
    expect(dotfilesProblem('https://GitHub.com/bob/dotfiles/', GITHUB)).toBeNull();
  });

  it('refuses what would send the person’s token elsewhere, or is not a repository', () => {
    expect(dotfilesProblem('https://evil.example/bob/dotfiles', GITHUB)).toContain('must be on https://github.com');
    expect(dotfilesProblem('http://github.com/bob/dotfiles', GITHUB)).toContain('must be on');
    expect(dotfilesProblem('https://github.com.evil.example/bob/dotfiles', GITHUB)).toContain('must be on');
    expect(dotfilesProblem('https://bob:secret@github.com/bob/dotfiles', GITHUB)).toContain('without a user name');
    expect(dotfilesProblem('https://github.com/bob/dotfiles?x=1', GITHUB)).toContain('without');
    expect(dotfilesProblem('https://github.com/bob', GITHUB)).toContain('e.g.');
    expect(dotfilesProblem('https://github.com/bob/dotfiles/tree/main', GITHUB)).toContain('e.g.');
    expect(dotfilesProblem('bob/dotfiles; rm -rf /', GITHUB)).toContain('is not a URL');
    expect(dotfilesProblem(`https://github.com/bob/${'x'.repeat(400)}`, GITHUB)).toContain('at most');
  });

  it('git gets the person’s token for their dotfiles only on the workspaces’ GitHub', () => {
    const clone = 'https://github.com/acme/shop.git';
    expect(sameHost(clone, 'https://github.com/bob/dotfiles')).toBe(true);
    expect(sameHost(clone, 'https://gitlab.com/bob/dotfiles')).toBe(false);
    expect(sameHost(clone, 'not a url')).toBe(false);
    expect(sameRepository('https://github.com/bob/dotfiles', { protocol: 'https', host: 'github.com', path: 'bob/dotfiles.git' })).toBe(true);
    expect(sameRepository('https://github.com/bob/dotfiles', { protocol: 'https', host: 'github.com', path: 'bob/other.git' })).toBe(false);
  });
});
