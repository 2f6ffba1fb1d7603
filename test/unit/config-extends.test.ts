import { describe, expect, it } from 'vitest';
import { RepoConfigError } from '../../lib/errors.js';
import { assertExtendsAllowed } from '../../worker/source/config-extends.js';

const errorOf = (raw: string, owner = 'acme') => {
  try {
    assertExtendsAllowed(raw, owner);
  } catch (err) {
    return err as RepoConfigError;
  }
  throw new Error('expected a refusal');
};

describe('_extends in berth.yml', () => {
  it("allows the owner's .github repository (GitHub's place for shared configuration), and no _extends", () => {
    for (const value of ['.github', 'acme/.github', 'ACME/.github', '.github:.github/berth.yml']) {
      expect(() => assertExtendsAllowed(`_extends: ${value}\nservices: {}\n`, 'acme'), value).not.toThrow();
    }
    expect(() => assertExtendsAllowed('services:\n  web:\n    build: .\n', 'acme')).not.toThrow();
  });

  it('refuses any other repository or file, at its line, naming what is allowed', () => {
    for (const value of ['payroll', 'acme/payroll', 'other-org/.github', '.github:secrets/prod.yml', 'acme/payroll:.github/berth.yml']) {
      const err = errorOf(`services:\n  web:\n    build: .\n_extends: ${value}\n`);
      expect(err, value).toBeInstanceOf(RepoConfigError);
      expect(err.line, value).toBe(4);
      expect(err.message).toContain('.github/berth.yml:4: _extends:');
      expect(err.message).toContain('may extend only the shared configuration of its owner, `_extends: .github` (the file .github/berth.yml of acme/.github)');
    }
    expect(errorOf('_extends: [a, b]\n').reason).toMatch(/is not allowed/);
  });
});
