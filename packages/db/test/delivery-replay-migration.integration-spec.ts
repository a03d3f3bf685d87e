import { randomBytes, randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { createDataSource, migrate } from '../src';
import { DeliveryReplay1764900000000 } from '../src/migrations/1764900000000-delivery-replay';

const SERVER = process.env.TEST_DATABASE_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432';
const databaseUrl = (name: string): string => `${SERVER}/${name}`;

/**
 * DeliveryReplay1764900000000 on a database with rows written before it: attempts the dispatcher
 * recorded without outcome, error code, keys or target host get them; an instance whose failure
 * ended a request that is still failed gets that request's version (so it can be replayed).
 */
describe('migration DeliveryReplay1764900000000 backfills existing rows', () => {
  const name = `t_replay_mig_${randomBytes(4).toString('hex')}`;
  const url = databaseUrl(name);

  afterAll(async () => {
    const c = new Client({ connectionString: databaseUrl('postgres') });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  });

  it('fills outcome, error code, keys and target host of old attempts, and the ended request version', async () => {
    await migrate(url);
    const ds = createDataSource(url, { poolSize: 1 });
    await ds.initialize();
    try {
      // Back to just before this migration, then write rows the way the code before it did.
      const qr = ds.createQueryRunner();
      await new DeliveryReplay1764900000000().down(qr);
      await qr.release();
      await ds.query(`DELETE FROM typeorm_migrations WHERE name = 'DeliveryReplay1764900000000'`);
      const [ext, cat, req, ok, failed] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
      await ds.query(
        `INSERT INTO assignment_requests (id, request_type, state, status, step, catalog_id, access_package_id, policy_id,
                                          assignment_id, target_id, version)
         VALUES ($1, 'adminAdd', 'deliveryFailed', 'DeliveryFailed', 'finished', $2, $3, $3, $3, $3, 4)`,
        [req, cat, randomUUID()],
      );
      for (const [id, sendState, status, ended] of [
        [ok, 'sent', 'calloutSent', false],
        [failed, 'failed', 'calloutFailed', true],
      ] as const)
        await ds.query(
          `INSERT INTO callout_instances (id, request_id, custom_extension_id, catalog_id, stage, status, send_state,
                                          attempt_count, max_attempts, target_url, endpoint, authentication, timeout_ms,
                                          payload, ended_request, waits)
           VALUES ($1, $2, $3, $4, 'assignmentRequestCreated', $5, $6, 2, 2,
                   'https://prod-1.westeurope.logic.azure.com:8443/workflows/x/triggers/manual/paths/invoke?sig=SECRET',
                   '{}', '{}', 1000, '{}', $7, true)`,
          [id, req, ext, cat, status, sendState, ended],
        );
      const attempt = (instance: string, n: number, status: number | null, error: string | null) =>
        ds.query(
          `INSERT INTO callout_attempts (callout_instance_id, attempt, started_at, http_status, latency_ms, error, client_request_id)
           VALUES ($1, $2, now(), $3, 10, $4, $5)`,
          [instance, n, status, error, randomUUID()],
        );
      await attempt(ok, 1, 503, 'HTTP 503');
      await attempt(ok, 2, 202, null);
      await attempt(failed, 1, null, 'no answer within 1000 ms');
      await attempt(failed, 2, 302, 'HTTP 302');

      const applied = await migrate(url);
      expect(applied.applied).toEqual(['DeliveryReplay1764900000000']);
      const rows = (await ds.query(
        `SELECT callout_instance_id AS id, attempt, outcome, error_code AS "errorCode", custom_extension_id AS ext,
                request_id AS req, stage, trigger, target_host AS host
           FROM callout_attempts ORDER BY callout_instance_id = $1 DESC, attempt`,
        [ok],
      )) as Array<Record<string, unknown>>;
      expect(rows.map((r) => [r.attempt, r.outcome, r.errorCode, r.trigger])).toEqual([
        [1, 'failedWillRetry', 'httpStatus', 'initial'],
        [2, 'succeeded', null, 'automaticRetry'],
        [1, 'failedWillRetry', 'timeout', 'initial'],
        [2, 'failed', 'redirect', 'automaticRetry'],
      ]);
      for (const r of rows) {
        expect(r).toMatchObject({ ext, req, stage: 'assignmentRequestCreated' });
        expect(r.host).toBe('prod-1.westeurope.logic.azure.com:8443');
      }
      const versions = (await ds.query(
        `SELECT id, ended_request_version AS v FROM callout_instances ORDER BY id = $1 DESC`,
        [failed],
      )) as Array<{ v: number | null }>;
      expect(versions.map((v) => v.v)).toEqual([4, null]);
    } finally {
      await ds.destroy();
    }
  });
});
