-- AlterTable
ALTER TABLE "Workspace" ADD COLUMN     "ideState" TEXT;
