-- Warm pools (issue 17): stopped, prepared workspaces of the default branch that a new branch claims
ALTER TABLE "Workspace" ADD COLUMN     "poolMember" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "diskSlug" TEXT,
ADD COLUMN     "claimedAt" TIMESTAMP(3);

-- CreateIndex
CREATE INDEX "Workspace_repositoryId_poolMember_state_idx" ON "Workspace"("repositoryId", "poolMember", "state");
