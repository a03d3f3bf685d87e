import { REQUEST_STATES } from '@entitle/domain';
import { MetricsService } from '@entitle/platform';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/**
 * Gauges read from PostgreSQL at scrape time (SPEC §6): requests by state, requests waiting for a
 * callback, the age of the oldest wait and the time left to the nearest callback deadline.
 */
@Injectable()
export class StateMetrics {
  constructor(@Inject(MetricsService) metrics: MetricsService, @Inject(DataSource) ds: DataSource) {
    metrics.gauge('entitle_requests', 'Assignment requests by state.', ['state'], async (g) => {
      const rows = (await ds.query(
        `SELECT state, count(*)::int AS n FROM assignment_requests GROUP BY state`,
      )) as Array<{ state: string; n: number }>;
      g.reset();
      // Every state has its series, at zero when no request is in it.
      for (const state of REQUEST_STATES) g.set({ state }, 0);
      for (const r of rows) g.set({ state: r.state }, r.n);
    });
    const waiting = metrics.gauge(
      'entitle_waiting_requests',
      'Callout instances waiting for a callback (requests in WaitingForCallback).',
      [],
    );
    const oldest = metrics.gauge(
      'entitle_oldest_wait_seconds',
      'Age of the oldest wait for a callback, in seconds.',
      [],
    );
    metrics.gauge(
      'entitle_nearest_callback_deadline_seconds',
      'Seconds until the nearest callback deadline (negative when overdue).',
      [],
      async (g) => {
        const [r] = (await ds.query(
          `SELECT count(*)::int AS n, EXTRACT(EPOCH FROM now() - min(modified_at))::float8 AS oldest, EXTRACT(EPOCH FROM min(wait_due_at) - now())::float8 AS nearest
           FROM callout_instances WHERE status = 'waitingForCallback' AND wait_due_at IS NOT NULL`,
        )) as Array<{ n: number; oldest: number | null; nearest: number | null }>;
        waiting.set(r?.n ?? 0);
        oldest.set(r?.oldest ?? 0);
        g.set(r?.nearest ?? 0);
      },
    );
  }
}
