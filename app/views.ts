import nunjucks from 'nunjucks';
import { fromRoot } from '../lib/paths.js';

/** One nunjucks environment for pages and GitHub markdown; autoescape is on for HTML. */
export const views = new nunjucks.Environment(new nunjucks.FileSystemLoader(fromRoot('views')), {
  autoescape: true,
  throwOnUndefined: false,
});

export function render(name: string, context: Record<string, unknown> = {}): string {
  return views.render(name, context);
}
