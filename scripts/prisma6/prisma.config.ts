import { defineConfig } from 'prisma6/config';
import { PrismaPg } from '@prisma/adapter-pg6';
export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: './schema.prisma',
  adapter: async () => new PrismaPg({ connectionString: process.env.DATABASE_URL ?? 'postgresql://berth:berth@127.0.0.1:5432/berth_test' }),
} as any);
