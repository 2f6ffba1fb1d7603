import { join } from 'node:path';
import nunjucks from 'nunjucks';

/** One nunjucks environment for pages and GitHub markdown; autoescape is on for HTML. */
export const views = new nunjucks.Environment(new nunjucks.FileSystemLoader(join(import.meta.dirname, '../views')), {
  autoescape: true,
  throwOnUndefined: false,
});

export function render(name: string, context: Record<string, unknown> = {}): string {
  return views.render(name, context);
}
