import { legacyQueueKeyPrefix } from '@entitle/config';
import type { Redis } from 'ioredis';
import { isCluster, type RedisClient } from './redis';

/**
 * Deletes the keys of the single-tag layout (`{<QUEUE_PREFIX>}:<queue>:...`), which put every queue
 * in one Redis Cluster slot. Nothing is lost with them: PostgreSQL is the record, and the
 * reconcilers re-enqueue whatever is due under the per-queue tags. On a cluster every master is
 * scanned (the old keys share one slot, so each batch is a single-slot UNLINK). Answers how many
 * keys were deleted. The new keys, `{<QUEUE_PREFIX>:<queue>}:...` and the extensions'
 * `{<QUEUE_PREFIX>:ext:<id>}:...`, do not match the pattern.
 */
export async function dropLegacyQueueKeys(client: RedisClient, queuePrefix: string): Promise<number> {
  const pattern = `${escapeGlob(legacyQueueKeyPrefix(queuePrefix))}:*`;
  const nodes: Redis[] = isCluster(client) ? client.nodes('master') : [client];
  let deleted = 0;
  for (const node of nodes) {
    const stream = node.scanStream({ match: pattern, count: 1_000 });
    for await (const keys of stream as AsyncIterable<string[]>) {
      if (keys.length > 0) deleted += await node.unlink(...keys);
    }
  }
  return deleted;
}

/** Redis's glob treats `*?[]\` specially (braces are literal); a prefix is letters, digits, `_.-`. */
function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
