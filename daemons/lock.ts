// One task at a time per key, inside this process: tasks for the same key (an address, a file) run in the order
// they were queued, tasks for different keys run side by side. The metadata daemon queues the rewrites of one
// token file here.
export class KeyedLock {
  /** The last queued task per key, settled or not; it never rejects, so the next task always runs. */
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const run = previous.then(task);
    const tail = run.catch(() => {});
    this.tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
