-- AlterTable
ALTER TABLE "Workspace" ADD COLUMN     "keptUntil" TIMESTAMP(3);
