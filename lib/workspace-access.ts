import type { Duplex, Readable, Writable } from 'node:stream';

/**
 * The web process's one door to a workspace's containers. The dashboard, the IDE gateway,
 * terminals, SSH and SFTP ask this interface, never a container engine: the Docker runtime
 * implements it next to the worker's Runtime (worker/runtime/docker-access.ts), and a runtime
 * for another engine, or for a workspace on another host, implements it too. Every call names
 * a workspace (or a handle this interface returned for one), so an implementation can route it
 * to the host that holds that workspace.
 *
 * Here in lib/ because app/ may not import worker/ (app/main.ts wires the implementation in).
 */
export interface WorkspaceAccess {
  /** throws when the engine cannot be reached (within a couple of seconds) */
  ping(): Promise<void>;
  /** the workspace's containers for its page, or null when the engine cannot be asked right now */
  containersOf(workspaceId: string): Promise<ContainerView[] | null>;
  /** where the workspace's own code-server answers (not a person's copy), or null when it is not running */
  ideEndpoint(workspaceId: string): Promise<Endpoint | null>;
  /**
   * the running container a terminal, SSH or SFTP session works in: the preview service's when
   * it has the workspace disk, else any service that has it; null when none runs
   */
  mainContainer(workspaceId: string, preferredService: string | null): Promise<WorkspaceShell | null>;
  /**
   * where `ssh -L` to `destination` goes: the IP of one of this workspace's running containers
   * (`localhost` = the main container, a service or container name, or one of their IPs);
   * null for anything else (the host, another workspace, the internet)
   */
  forwardTarget(workspaceId: string, mainContainerId: string, destination: string): Promise<string | null>;
  /** whether the container of this name runs with `envEntry` (`NAME=value`) in its environment */
  runsWithEnv(containerName: string, envEntry: string): Promise<boolean>;
  /** the workspace's IDE containers: its own (no `person`) and people's copies of it */
  ideContainers(workspaceId: string): Promise<IdeContainerInfo[]>;
  /**
   * a person's own VS Code: a copy of the workspace's running IDE container `templateId` (image,
   * environment without the template's person variables, mounts, network, limits, labels) with
   * `env` added and a volume of the person's own over VS Code's User directory and HOME (kept
   * until the workspace is deleted), started. The name is `<template's name>.<login>`
   * (personIdeName). On failure the container is removed and the error thrown.
   */
  createPersonIde(req: { templateId: string; login: string; env: string[] }): Promise<{ id: string; name: string } & Endpoint>;
  /** stops and removes a container this interface listed (a person's stale VS Code) */
  removeContainer(id: string): Promise<void>;
  /** a handle on a running container this interface listed or made, by id or name; no engine call */
  shell(idOrName: string): WorkspaceShell;
}

export interface Endpoint {
  /** an address the web process reaches (a container IP on the workspace network, for Docker) */
  host: string;
  port: number;
  /**
   * set when host:port is on another host (issue 18): a connection to it through that host's
   * agent, which the web uses instead of connecting to host:port itself
   */
  connect?: () => Promise<Duplex>;
}

export interface ContainerView {
  name: string;
  service: string | null;
  /** `service` (long-running), `task` (migrate, seed) or `ide` */
  role: string | null;
  /** the engine's state: running, exited, created, restarting, dead, ... */
  state: string;
  /** the engine's human status, e.g. "Up 5 minutes" or "Exited (1) 2 minutes ago" */
  status: string;
  image: string;
  createdAt: Date;
}

export interface IdeContainerInfo {
  id: string;
  name: string;
  running: boolean;
  /** a person's copy: their login (lower case); none on the workspace's own */
  person?: string;
  /** a person's copy: the id of the workspace IDE container it was made from */
  template?: string;
  /** its BERTH_GIT_HANDLE, when it has one */
  gitHandle?: string;
  /** where its code-server answers, when it runs */
  endpoint?: Endpoint;
}

/** the name of `login`'s VS Code container made from the IDE container `templateName` */
export function personIdeName(templateName: string, login: string): string {
  return `${templateName}.${login}`;
}

/** A running container people work in. */
export interface WorkspaceShell {
  readonly id: string;
  /** starts a program in the container (never through a shell on the host) */
  exec(req: ExecRequest): Promise<ExecSession>;
  /** Berth as this container reaches it: its network's gateway address, or null */
  gateway(): Promise<string | null>;
}

export interface ExecRequest {
  /** the program and its arguments; where a shell runs, it is the container's */
  argv: string[];
  /** a terminal: output on stdout only, sized with resize() */
  tty?: boolean;
  /** the caller writes the program's input (else stdin is closed) */
  stdin?: boolean;
  /** `NAME=value` entries added to the container's environment */
  env?: string[];
  /** default: the image's */
  workingDir?: string;
  /** start it and return at once: nothing is attached (the session's streams are empty and ended) */
  detach?: boolean;
}

/** One program running in a container, its streams apart. */
export interface ExecSession {
  /** the program's input (a terminal's keystrokes); end() closes its stdin */
  readonly stdin: Writable;
  /** its output (with a tty, everything) */
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** settles once the connection to the program ends: `end` when its output ended, `error` when the connection broke */
  readonly ended: Promise<'end' | 'error'>;
  /** sizes the terminal (tty only); a program that has ended is not sized, and no error */
  resize(cols: number, rows: number): Promise<void>;
  /** the program's exit code once it exited, else null */
  exitCode(): Promise<number | null>;
  /** drops the connection; the engine may keep the program running (end it with a kill inside) */
  destroy(): void;
  readonly destroyed: boolean;
}
