import { parseIsoDuration } from './duration';

/** An `expiration` as Graph writes it on a request's schedule or on a policy. */
export interface ExpirationSetting {
  readonly type?: string;
  readonly endDateTime?: string;
  readonly duration?: string;
}

export interface ScheduleSetting {
  readonly startDateTime?: string;
  readonly expiration?: ExpirationSetting;
}

function validDate(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/**
 * The end an expiration gives, counted from `startAt`: null for noExpiration, a date for an end
 * time or a duration, undefined when the expiration says nothing usable (so the next source decides).
 */
function endOf(e: ExpirationSetting | null | undefined, startAt: Date): Date | null | undefined {
  if (!e) return undefined;
  if (e.type === 'noExpiration') return null;
  const end = validDate(e.endDateTime);
  if (end) return end;
  if (e.duration) {
    const seconds = parseIsoDuration(e.duration);
    if (seconds !== undefined) return new Date(startAt.getTime() + seconds * 1000);
  }
  return undefined;
}

/**
 * The delivered assignment's schedule (SPEC §2.6). It starts at the request's `startDateTime`, or
 * now. It ends as the request's own `schedule.expiration` says when that says anything (an end
 * time, a duration, or noExpiration), else as the policy's `expiration` says, else never.
 */
export function assignmentSchedule(
  requestSchedule: ScheduleSetting | null | undefined,
  policyExpiration: ExpirationSetting | null | undefined,
  now: Date,
): { startAt: Date; endAt: Date | null } {
  const startAt = validDate(requestSchedule?.startDateTime) ?? now;
  const fromRequest = endOf(requestSchedule?.expiration, startAt);
  if (fromRequest !== undefined) return { startAt, endAt: fromRequest };
  return { startAt, endAt: endOf(policyExpiration, startAt) ?? null };
}
