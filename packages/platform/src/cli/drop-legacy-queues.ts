import { legacyQueueKeyPrefix, loadConfigOrExit } from '@entitle/config';
import { dropLegacyQueueKeys } from '../legacy-queues';
import { createRedis } from '../redis';

/**
 * `pnpm queues:drop-legacy`: after upgrading to one hash tag per queue, deletes the keys of the old
 * single-tag layout. Run it once the new apps are up; the reconcilers have re-enqueued from
 * PostgreSQL whatever was due, so nothing the old keys held is lost.
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit('queues:drop-legacy');
  const redis = createRedis(config, { maxRetriesPerRequest: 3 });
  try {
    const deleted = await dropLegacyQueueKeys(redis, config.queuePrefix);
    process.stdout.write(
      `queues:drop-legacy: deleted ${deleted} keys under ${legacyQueueKeyPrefix(config.queuePrefix)}: (${config.redisClusterNodes ? 'cluster' : 'standalone'})\n`,
    );
  } finally {
    redis.disconnect();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`queues:drop-legacy failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
