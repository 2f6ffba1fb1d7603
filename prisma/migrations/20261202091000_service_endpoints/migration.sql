-- AlterTable
ALTER TABLE "Workspace" ADD COLUMN     "serviceEndpoints" JSONB;
