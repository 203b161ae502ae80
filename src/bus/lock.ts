/**
 * One process owns a bus directory: `<dir>/LOCK` holds the owner's pid. A lock
 * whose process is gone (crash, kill -9) is stale and taken over.
 */
import { readFileSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";

export class BusLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly ownerPid: number,
  ) {
    super(
      ownerPid === process.pid
        ? `The bus in ${dir} is already open in this process.`
        : `The bus in ${dir} is in use by process ${ownerPid} (a running Sluice server?). ` +
            `Stop it first; if no such process is Sluice, delete ${lockPath(dir)}.`,
    );
    this.name = "BusLockedError";
  }
}

/** Bus directories this process holds the lock of (resolved paths). */
const ownedHere = new Set<string>();

function lockPath(dir: string): string {
  return join(dir, "LOCK");
}

/** The pid of the live process that owns the bus in `dir`, or null when none does. */
export function busOwnerPid(dir: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(lockPath(dir), "utf8").trim());
  } catch (error) {
    if (isErrno(error, "ENOENT")) return null;
    throw error;
  }
  if (!Number.isInteger(pid) || pid <= 0) return null;
  // Our own pid in the file is a leftover from a previous life (containers reuse pids) unless we hold it.
  if (pid === process.pid) return ownedHere.has(resolve(dir)) ? pid : null;
  return isAlive(pid) ? pid : null;
}

export async function acquireLock(dir: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await writeFile(lockPath(dir), `${process.pid}\n`, { flag: "wx" });
      ownedHere.add(resolve(dir));
      return;
    } catch (error) {
      if (!isErrno(error, "EEXIST")) throw error;
      const owner = busOwnerPid(dir);
      if (owner !== null) throw new BusLockedError(dir, owner);
      // Stale; a second EEXIST means another process took it over at the same moment.
      if (attempt === 2) throw error;
      await rm(lockPath(dir), { force: true });
    }
  }
}

export async function releaseLock(dir: string): Promise<void> {
  ownedHere.delete(resolve(dir));
  await rm(lockPath(dir), { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return isErrno(error, "EPERM");
  }
}

export function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
