/** How many group transactions run at once, and how many items one takes at most. */
export interface CommitGroupLimits {
  maxInFlight: number;
  maxGroup: number;
}

interface Waiting<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit. An item submitted while fewer than `maxInFlight` transactions run is committed at
 * once, by itself (`commitOne`): an idle process adds no delay. Items submitted while the limit is
 * reached wait, and the next transaction takes up to `maxGroup` of them together (`commitMany`),
 * so under load one transaction carries many items. Each submit settles only after the commit that
 * carried its item. If a group's transaction fails, each of its items is committed again by itself,
 * so one bad item fails only itself. `keyOf` keeps items of one key (one request) in separate
 * groups, in the order they came.
 */
export class CommitGroup<T, R> {
  private readonly queue: Array<Waiting<T, R>> = [];
  private inFlight = 0;

  constructor(
    private readonly commitMany: (items: readonly T[]) => Promise<R[]>,
    private readonly commitOne: (item: T) => Promise<R>,
    private readonly keyOf: (item: T) => string,
    private readonly limits: CommitGroupLimits = { maxInFlight: 2, maxGroup: 32 },
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  /** Items waiting for a transaction (tests, metrics). */
  get waiting(): number {
    return this.queue.length;
  }

  private pump(): void {
    while (this.inFlight < this.limits.maxInFlight && this.queue.length > 0) {
      const group = this.take();
      this.inFlight += 1;
      void this.run(group).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  /** The oldest waiting items, one per key, up to maxGroup; the rest keep their places. */
  private take(): Array<Waiting<T, R>> {
    const group: Array<Waiting<T, R>> = [];
    const keys = new Set<string>();
    for (let i = 0; i < this.queue.length && group.length < this.limits.maxGroup;) {
      const w = this.queue[i] as Waiting<T, R>;
      const key = this.keyOf(w.item);
      if (keys.has(key)) {
        i += 1;
        continue;
      }
      keys.add(key);
      group.push(w);
      this.queue.splice(i, 1);
    }
    return group;
  }

  private async run(group: Array<Waiting<T, R>>): Promise<void> {
    if (group.length > 1) {
      let results: R[] | undefined;
      try {
        results = await this.commitMany(group.map((w) => w.item));
      } catch {
        // Rolled back: each item again by itself, below.
      }
      if (results) {
        group.forEach((w, k) => w.resolve(results[k] as R));
        return;
      }
    }
    await Promise.all(
      group.map(async (w) => {
        try {
          w.resolve(await this.commitOne(w.item));
        } catch (err) {
          w.reject(err);
        }
      }),
    );
  }
}
