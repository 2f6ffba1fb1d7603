/**
 * The runtime conformance suite (runtime-conformance.ts) against the Docker runtime on this
 * machine's engine, with the web's door to it (DockerWorkspaceAccess).
 */
import Dockerode from 'dockerode';
import { DockerRuntime } from '../../worker/runtime/docker.js';
import { DockerWorkspaceAccess } from '../../worker/runtime/docker-access.js';
import { BASE_IMAGE_TAG, ensureBaseImage } from '../fixtures/base-image.js';
import { runtimeConformance } from './runtime-conformance.js';

runtimeConformance('docker', async () => {
  const docker = new Dockerode();
  await ensureBaseImage(docker);
  return {
    runtime: new DockerRuntime(docker, 'berth-conformance'),
    access: new DockerWorkspaceAccess(docker),
    image: BASE_IMAGE_TAG,
    close: async () => {},
  };
});
