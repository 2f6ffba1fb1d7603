-- Your settings: a person's dotfiles repository
ALTER TABLE "User" ADD COLUMN "dotfilesUrl" TEXT;
