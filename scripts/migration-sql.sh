#!/usr/bin/env bash
# Prints the SQL that takes an empty database to prisma/schema.prisma, without Prisma's
# native engines (they cannot be downloaded everywhere): Prisma 6's CLI with its WASM schema
# engine and a pg adapter (see ../shared/notes/prisma.md). Needs DATABASE_URL of a server
# where it may connect. For a new migration, diff this against the previous schema's output
# or write the ALTER statements by hand, then check them with test/integration/migrate.test.ts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e 's/provider = "prisma-client"/provider = "prisma-client"/' \
    -e "s#output   = \"./generated\"#output   = \"$work/gen\"#" \
    -e 's/provider = "postgresql"/provider = "postgresql"\n  url      = env("DATABASE_URL")/' \
    "$root/prisma/schema.prisma" > "$work/schema.prisma"
cp "$root/scripts/prisma6/prisma.config.ts" "$work/prisma.config.ts"
ln -s "$root/node_modules" "$work/node_modules"
cd "$work"
PRISMA_QUERY_ENGINE_LIBRARY=/bin/false node "$root/node_modules/prisma6/build/index.js" \
  migrate diff --from-empty --to-schema-datamodel schema.prisma --script | sed '/CREATE SCHEMA IF NOT EXISTS "public";/d;/-- CreateSchema/d'
