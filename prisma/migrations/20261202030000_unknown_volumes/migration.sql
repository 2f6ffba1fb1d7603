-- Docker volumes of workspaces this database does not know: reported, never removed
CREATE TABLE "UnknownVolume" (
    "name" TEXT NOT NULL,
    "workspaceId" TEXT NOT NULL,
    "slug" TEXT,
    "firstSeenAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastSeenAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "UnknownVolume_pkey" PRIMARY KEY ("name")
);
