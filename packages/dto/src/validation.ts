import { DomainError } from '@entitle/domain';
import { z } from './errors-map';

/**
 * Turns a zod failure into one 400 that names every bad field and the rule it broke, e.g.
 * "clientConfiguration.maximumRetries: expected a number, got string".
 */
export function validationError(error: z.ZodError, what: string): DomainError {
  const problems = error.issues.map((i) => {
    // `stages[0].primaryApprovers[1].userId`, the same spelling the edge's input guard uses.
    const path =
      i.path.reduce<string>(
        (p, k) => (typeof k === 'number' ? `${p}[${k}]` : p ? `${p}.${String(k)}` : String(k)),
        '',
      ) || '(body)';
    return `${path}: ${i.message}`;
  });
  return new DomainError('InvalidProperty', `Invalid ${what}: ${problems.join('; ')}`, { problems });
}

export function parseBody<S extends z.ZodType>(schema: S, body: unknown, what: string): z.output<S> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new DomainError('BadRequest', `The request body must be a JSON object describing the ${what}.`);
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw validationError(parsed.error, what);
  return parsed.data;
}

/** Case-insensitive enum matching for inputs (SPEC §2): answers with Graph's casing. */
export function enumValue<T extends string>(values: readonly T[], raw: unknown): T | undefined {
  if (typeof raw !== 'string') return undefined;
  const lower = raw.toLowerCase();
  return values.find((v) => v.toLowerCase() === lower);
}

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export function isGuid(value: unknown): value is string {
  return typeof value === 'string' && GUID.test(value);
}

/** Every `{id}` reference in a body: refused here (400 naming the field), never handed to a uuid column. */
export const guid = z.string().regex(GUID, 'expected a GUID');

const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))?$/i;

/**
 * An ISO-8601 date-time with a four-digit year from 0001, a day that exists in its month and a
 * valid time and offset: what PostgreSQL's timestamptz reads as the same instant. Date.parse alone
 * would take '2026-02-30' (as 2 March), '1' or '-271821-04-20', which the database then refuses.
 */
export function isIsoDateTime(value: string): boolean {
  const m = ISO_DATE_TIME.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second, offH, offM] = [m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]].map(
    (x) => Number(x ?? 0),
  ) as [number, number, number, number, number, number, number, number];
  if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return false;
  if (offH > 23 || offM > 59) return false;
  const date = new Date(Date.UTC(2000, month - 1, day));
  date.setUTCFullYear(year);
  return date.getUTCDate() === day && !Number.isNaN(Date.parse(value));
}

export const isoDateTime = z
  .string()
  .refine(isIsoDateTime, 'expected an ISO-8601 date-time such as 2026-01-01T00:00:00Z');

/** An id in a URL that is not a GUID names nothing: 404, not a database error. */
export function requireGuid(value: string, what: string): string {
  if (!isGuid(value))
    throw new DomainError('NotFound', `${what} ${JSON.stringify(value)} does not exist (ids are GUIDs)`);
  return value.toLowerCase();
}
