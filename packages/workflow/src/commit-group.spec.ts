import { CommitGroup } from './commit-group';

interface Item {
  key: string;
  n: number;
}

/** A commit that stays open until released, recording what each transaction carried. */
function harness(limits = { maxInFlight: 1, maxGroup: 3 }) {
  const transactions: Array<{ kind: 'one' | 'many'; items: number[] }> = [];
  const open: Array<() => void> = [];
  let failMany = false;
  const hold = () => new Promise<void>((r) => open.push(r));
  const group = new CommitGroup<Item, string>(
    async (items) => {
      transactions.push({ kind: 'many', items: items.map((i) => i.n) });
      await hold();
      if (failMany) throw new Error('rolled back');
      return items.map((i) => `many:${i.n}`);
    },
    async (item) => {
      transactions.push({ kind: 'one', items: [item.n] });
      await hold();
      if (item.key === 'bad') throw new Error(`item ${item.n} is bad`);
      return `one:${item.n}`;
    },
    (item) => item.key,
    limits,
  );
  const release = async () => {
    // Lets the submitted promises chain on before the next commit is released.
    await new Promise((r) => setImmediate(r));
    open.shift()?.();
    await new Promise((r) => setImmediate(r));
  };
  return {
    group,
    transactions,
    release,
    failGroups: () => {
      failMany = true;
    },
  };
}

describe('CommitGroup (group commit of outcomes)', () => {
  it('commits an item at once and by itself while nothing else is in flight', async () => {
    const h = harness();
    const a = h.group.submit({ key: 'r1', n: 1 });
    await h.release();
    await expect(a).resolves.toBe('one:1');
    expect(h.transactions).toEqual([{ kind: 'one', items: [1] }]);
  });

  it('items that arrive while the limit is reached go together in the next transaction, up to maxGroup, each settled after it', async () => {
    const h = harness();
    const first = h.group.submit({ key: 'r1', n: 1 });
    const rest = [2, 3, 4, 5].map((n) => h.group.submit({ key: `r${n}`, n }));
    expect(h.group.waiting).toBe(4);
    await h.release();
    await expect(first).resolves.toBe('one:1');
    expect(h.transactions[1]).toEqual({ kind: 'many', items: [2, 3, 4] });
    await h.release();
    await expect(Promise.all(rest.slice(0, 3))).resolves.toEqual(['many:2', 'many:3', 'many:4']);
    await h.release();
    await expect(rest[3]).resolves.toBe('one:5');
  });

  it('two items of one key never share a transaction, and keep their order', async () => {
    const h = harness();
    const first = h.group.submit({ key: 'r0', n: 0 });
    const a = h.group.submit({ key: 'same', n: 1 });
    const b = h.group.submit({ key: 'same', n: 2 });
    const c = h.group.submit({ key: 'other', n: 3 });
    await h.release();
    await first;
    expect(h.transactions[1]).toEqual({ kind: 'many', items: [1, 3] });
    await h.release();
    await expect(Promise.all([a, c])).resolves.toEqual(['many:1', 'many:3']);
    expect(h.transactions[2]).toEqual({ kind: 'one', items: [2] });
    await h.release();
    await expect(b).resolves.toBe('one:2');
  });

  it('a group that rolls back is committed item by item, and only the bad item fails', async () => {
    const h = harness({ maxInFlight: 1, maxGroup: 8 });
    h.failGroups();
    const first = h.group.submit({ key: 'r0', n: 0 });
    const good = h.group.submit({ key: 'r1', n: 1 });
    const bad = h.group.submit({ key: 'bad', n: 2 }).catch((err: Error) => `rejected: ${err.message}`);
    await h.release();
    await first;
    await h.release(); // the group, which rolls back
    await h.release(); // item 1 by itself
    await h.release(); // item 2 by itself
    await expect(good).resolves.toBe('one:1');
    await expect(bad).resolves.toBe('rejected: item 2 is bad');
    expect(h.transactions.map((t) => t.kind)).toEqual(['one', 'many', 'one', 'one']);
  });

  it('runs up to maxInFlight transactions at once', async () => {
    const h = harness({ maxInFlight: 2, maxGroup: 8 });
    const a = h.group.submit({ key: 'a', n: 1 });
    const b = h.group.submit({ key: 'b', n: 2 });
    const c = h.group.submit({ key: 'c', n: 3 });
    expect(h.transactions).toEqual([
      { kind: 'one', items: [1] },
      { kind: 'one', items: [2] },
    ]);
    expect(h.group.waiting).toBe(1);
    await h.release();
    await h.release();
    await h.release();
    await expect(Promise.all([a, b, c])).resolves.toEqual(['one:1', 'one:2', 'one:3']);
  });
});
