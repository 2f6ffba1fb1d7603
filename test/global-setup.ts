import { ensureBaseImage } from './fixtures/base-image.js';

/** The image every test repository builds FROM; made from the host's files, since no registry is reachable. */
export default async function setup() {
  await ensureBaseImage();
}
