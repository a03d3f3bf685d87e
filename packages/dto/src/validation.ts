import { DomainError } from '@entitle/domain';
import type { z } from 'zod';

/**
 * Turns a zod failure into one 400 that names every bad field and the rule it broke, e.g.
 * "clientConfiguration.maximumRetries: expected a number, got string".
 */
export function validationError(error: z.ZodError, what: string): DomainError {
  const problems = error.issues.map((i) => {
    const path = i.path.map(String).join('.') || '(body)';
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

/** An id in a URL that is not a GUID names nothing: 404, not a database error. */
export function requireGuid(value: string, what: string): string {
  if (!isGuid(value))
    throw new DomainError('NotFound', `${what} ${JSON.stringify(value)} does not exist (ids are GUIDs)`);
  return value.toLowerCase();
}
