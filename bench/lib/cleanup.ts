/**
 * Cleanup that runs however a benchmark ends: normally, on an error, or on
 * Ctrl-C / SIGTERM. Tasks run newest first, so a server started in a temp dir
 * is stopped before its dir is deleted.
 */

type Task = () => Promise<void> | void;

const tasks: Task[] = [];
let signalsInstalled = false;

/** Registers a task; the returned function runs it now (once) and unregisters it. */
export function onCleanup(task: Task): () => Promise<void> {
  installSignalHandlers();
  let done = false;
  const once: Task = async () => {
    if (done) return;
    done = true;
    await task();
  };
  tasks.push(once);
  return async () => {
    const index = tasks.indexOf(once);
    if (index !== -1) tasks.splice(index, 1);
    await once();
  };
}

/** Runs every pending task, newest first; errors are reported, not thrown, so the rest still run. */
export async function runCleanups(): Promise<void> {
  while (tasks.length > 0) {
    const task = tasks.pop();
    try {
      await task?.();
    } catch (error) {
      console.error(`bench: cleanup failed: ${(error as Error).message}`);
    }
  }
}

function installSignalHandlers(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  let interrupted = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      // A second Ctrl-C while cleaning up exits at once.
      if (interrupted) process.exit(130);
      interrupted = true;
      console.error(`\nbench: ${signal}, stopping the server and deleting temp data...`);
      runCleanups().finally(() => process.exit(130));
    });
  }
}
