-- Hosts: workspaces spread over several Docker hosts (issue 18)

-- AlterTable
ALTER TABLE "Workspace" ADD COLUMN     "hostId" TEXT;

-- CreateTable
CREATE TABLE "Host" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "url" TEXT,
    "labels" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "draining" BOOLEAN NOT NULL DEFAULT false,
    "maxRunning" INTEGER NOT NULL DEFAULT 20,
    "memoryTotal" BIGINT NOT NULL DEFAULT 0,
    "memoryFree" BIGINT NOT NULL DEFAULT 0,
    "diskFree" BIGINT NOT NULL DEFAULT 0,
    "lastHeartbeatAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "unreachableSince" TIMESTAMP(3),
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Host_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Host_name_key" ON "Host"("name");

-- CreateIndex
CREATE INDEX "Workspace_hostId_idx" ON "Workspace"("hostId");

-- AddForeignKey
ALTER TABLE "Workspace" ADD CONSTRAINT "Workspace_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "Host"("id") ON DELETE SET NULL ON UPDATE CASCADE;
