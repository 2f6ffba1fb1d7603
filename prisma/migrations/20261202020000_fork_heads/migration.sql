-- Heads GitHub reported for fork pull requests: /berth approve binds to the one its comment saw.
CREATE TABLE "ForkHead" (
    "id" BIGSERIAL NOT NULL,
    "workspaceId" TEXT NOT NULL,
    "sha" TEXT NOT NULL,
    "seenAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ForkHead_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "ForkHead_workspaceId_sha_seenAt_key" ON "ForkHead"("workspaceId", "sha", "seenAt");

CREATE INDEX "ForkHead_workspaceId_seenAt_idx" ON "ForkHead"("workspaceId", "seenAt");

ALTER TABLE "ForkHead" ADD CONSTRAINT "ForkHead_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Previews of private repositories are private unless berth.yml says `visibility: public`;
-- workspaces built before this change get the safe default until their next build.
UPDATE "Workspace" SET "previewPrivate" = true
  WHERE "repositoryId" IN (SELECT "id" FROM "Repository" WHERE "private" = true);
