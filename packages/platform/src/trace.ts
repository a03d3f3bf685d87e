import { randomBytes } from 'node:crypto';
import { activeTraceparent } from './otel';

/** W3C trace context (SPEC §6): one trace id follows a request through every hop. */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export function parseTraceparent(
  value: string | undefined | null,
): { traceId: string; spanId: string; flags: string } | undefined {
  if (!value) return undefined;
  const m = TRACEPARENT.exec(value.trim().toLowerCase());
  if (!m || /^0+$/.test(m[1] as string) || /^0+$/.test(m[2] as string)) return undefined;
  return { traceId: m[1] as string, spanId: m[2] as string, flags: m[3] as string };
}

export function newTraceparent(): string {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
}

/**
 * The traceparent to hand onward (job payloads, stored requests): a child of `parent` (same trace
 * id, new span id), or a new trace when there is none. With OpenTelemetry on, it names the active
 * span instead (the server or job span we are in) whenever that span continues `parent`'s trace,
 * so the next hop's span hangs off a span that was really exported.
 */
export function childTraceparent(parent: string | undefined | null): string {
  const p = parseTraceparent(parent);
  const active = activeTraceparent();
  if (active && (!p || parseTraceparent(active)?.traceId === p.traceId)) return active;
  if (!p) return newTraceparent();
  return `00-${p.traceId}-${randomBytes(8).toString('hex')}-${p.flags}`;
}

export function traceIdOf(traceparent: string | undefined | null): string | undefined {
  return parseTraceparent(traceparent)?.traceId;
}
