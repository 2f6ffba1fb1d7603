import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../prisma/generated/client.js';

export type { PrismaClient };
export * from '../../prisma/generated/enums.js';
export type { Workspace, Build, Repository, Installation, WorkspaceEvent, BaseDisk } from '../../prisma/generated/client.js';

/** Prisma 7 has no native engine: queries go through the `pg` driver adapter. */
export function createPrisma(connectionString: string): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString }) });
}
