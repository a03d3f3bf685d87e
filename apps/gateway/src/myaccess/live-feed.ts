import { PagesRepository } from '@entitle/db';
import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { EventHub } from '../admin/event-hub';

/** How long changed requests are gathered before one lookup of who they concern. */
const GATHER_MS = 100;

/**
 * The people's live updates (SPEC-2 §12.2): domain events from the bus (so any gateway replica
 * sees every change), narrowed to the users each request concerns (its requestor, its target, its
 * approvers) with one query per batch of changes, whatever the number of open streams. A stream
 * is told only that one of its user's requests changed, never what.
 */
@Injectable()
export class LiveFeed implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('LiveFeed');
  private readonly streams = new Map<string, Set<(requestId: string) => void>>();
  private pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    @Inject(EventHub) private readonly hub: EventHub,
    @Inject(PagesRepository) private readonly pages: PagesRepository,
  ) {}

  onModuleInit(): void {
    this.unsubscribe = this.hub.subscribe((e) => {
      const requestId = (e.event as { requestId?: unknown } | null)?.requestId;
      if (this.streams.size === 0 || typeof requestId !== 'string') return;
      this.pending.add(requestId);
      this.timer ??= setTimeout(() => void this.flush(), GATHER_MS);
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
    clearTimeout(this.timer);
  }

  /** Follows one user's requests; answers the function that stops it. */
  follow(userId: string, fn: (requestId: string) => void): () => void {
    let set = this.streams.get(userId);
    if (!set) this.streams.set(userId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.streams.delete(userId);
    };
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    const ids = [...this.pending];
    this.pending = new Set();
    if (ids.length === 0 || this.streams.size === 0) return;
    try {
      for (const a of await this.pages.audiences(ids))
        // A requestor is often the target too: each user is told once.
        for (const userId of new Set(a.userIds)) for (const fn of this.streams.get(userId) ?? []) fn(a.requestId);
    } catch (err) {
      // A lost notice costs a live refresh, never data: the page is right on the next load.
      this.logger.warn(`live update lookup failed: ${String(err)}`);
    }
  }
}
