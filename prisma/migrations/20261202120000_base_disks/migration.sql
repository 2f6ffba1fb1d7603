-- AlterTable
ALTER TABLE "Workspace" ADD COLUMN     "diskOrigin" TEXT,
ADD COLUMN     "snapshotSha" TEXT,
ADD COLUMN     "startSteps" JSONB;

-- CreateTable
CREATE TABLE "BaseDisk" (
    "id" TEXT NOT NULL,
    "repositoryId" BIGINT NOT NULL,
    "sha" TEXT NOT NULL,
    "buildId" TEXT NOT NULL,
    "state" TEXT NOT NULL DEFAULT 'preparing',
    "error" TEXT,
    "withSecrets" BOOLEAN NOT NULL DEFAULT false,
    "steps" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "readyAt" TIMESTAMP(3),

    CONSTRAINT "BaseDisk_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "BaseDisk_repositoryId_state_idx" ON "BaseDisk"("repositoryId", "state");

-- AddForeignKey
ALTER TABLE "BaseDisk" ADD CONSTRAINT "BaseDisk_repositoryId_fkey" FOREIGN KEY ("repositoryId") REFERENCES "Repository"("id") ON DELETE CASCADE ON UPDATE CASCADE;
