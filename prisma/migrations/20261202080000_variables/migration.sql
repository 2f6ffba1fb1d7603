-- Variables and secrets (issue 16)

-- AlterTable
ALTER TABLE "Workspace" ADD COLUMN     "approvedSecretsSha" TEXT,
ADD COLUMN     "variableSources" JSONB;

-- CreateTable
CREATE TABLE "Variable" (
    "id" TEXT NOT NULL,
    "scope" TEXT NOT NULL,
    "repositoryId" BIGINT,
    "name" TEXT NOT NULL,
    "branches" TEXT NOT NULL DEFAULT '',
    "path" TEXT,
    "secret" BOOLEAN NOT NULL DEFAULT true,
    "buildTime" BOOLEAN NOT NULL DEFAULT false,
    "ciphertext" TEXT NOT NULL,
    "keyId" TEXT NOT NULL,
    "updatedBy" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Variable_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Variable_repositoryId_idx" ON "Variable"("repositoryId");

-- CreateIndex
CREATE UNIQUE INDEX "Variable_scope_name_branches_key" ON "Variable"("scope", "name", "branches");

-- AddForeignKey
ALTER TABLE "Variable" ADD CONSTRAINT "Variable_repositoryId_fkey" FOREIGN KEY ("repositoryId") REFERENCES "Repository"("id") ON DELETE CASCADE ON UPDATE CASCADE;
