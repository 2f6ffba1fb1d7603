/**
 * Builds the test base image (`berth-base:node20`) if the Docker daemon does not have it,
 * then smoke-tests it. Run with `npx tsx scripts/build-base-image.ts`; `--force` rebuilds.
 * .ci/run calls this before the tests so no test pays for the build.
 */
import Dockerode from 'dockerode';
import { BASE_IMAGE_TAG, buildBaseImage, ensureBaseImage, runInImage } from '../test/fixtures/base-image.js';

async function main(): Promise<void> {
  const docker = new Dockerode();
  const started = Date.now();
  const tag = process.argv.includes('--force') ? await buildBaseImage(docker) : await ensureBaseImage(docker);
  const info = await docker.getImage(tag).inspect();
  console.log(
    `[base-image] ${tag} ready in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
      `(${(info.Size / 1024 / 1024).toFixed(1)} MB, ${info.Id.slice(0, 19)})`,
  );

  const checks: Array<{ cmd: string[]; expect: RegExp }> = [
    { cmd: ['node', '-e', 'console.log(1 + 1)'], expect: /^2$/m },
    { cmd: ['sh', '-c', 'echo hi'], expect: /^hi$/m },
    { cmd: ['sh', '-c', 'command -v wget && command -v env && test -d /tmp -a -k /tmp && echo tmp-ok'], expect: /tmp-ok/ },
  ];
  for (const { cmd, expect } of checks) {
    const r = await runInImage(docker, tag, cmd);
    if (r.exitCode !== 0 || !expect.test(r.stdout)) {
      throw new Error(
        `${BASE_IMAGE_TAG} smoke check failed: ${JSON.stringify(cmd)} exited ${r.exitCode}\n` +
          `stdout: ${r.stdout}\nstderr: ${r.stderr}`,
      );
    }
  }
  console.log('[base-image] smoke checks passed (node, sh, wget, /tmp)');
}

main().catch((err) => {
  console.error('[base-image] FAILED:', err instanceof Error ? err.stack ?? err.message : err);
  process.exit(1);
});
