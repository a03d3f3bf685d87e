import { z } from 'zod';

function describe(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'an array';
  if (typeof input === 'string')
    return `the string ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input)}`;
  if (typeof input === 'object') return 'an object';
  // String(), not JSON: 1e309 arrives as Infinity, which JSON would show as null.
  if (typeof input === 'number' || typeof input === 'bigint') return `number ${String(input)}`;
  return `${typeof input} ${JSON.stringify(input)}`;
}

/**
 * Messages that say the rule in plain words ("required", "expected a boolean, got the string
 * \"yes\""); the field path is added by validationError. Installed once, for every schema here.
 */
z.config({
  customError: (iss) => {
    if (iss.code === 'invalid_type') {
      if (iss.input === undefined) return 'required';
      return `expected ${iss.expected === 'int' ? 'a whole number' : `a ${iss.expected}`}, got ${describe(iss.input)}`;
    }
    if (iss.code === 'too_small' && iss.origin === 'string')
      return iss.minimum === 1 ? 'must not be empty' : `must be at least ${iss.minimum} characters`;
    if (iss.code === 'too_big' && iss.origin === 'string') return `must be at most ${iss.maximum} characters`;
    if (iss.code === 'too_small' && iss.origin === 'number')
      return `must be at least ${iss.minimum}, got ${String(iss.input)}`;
    if (iss.code === 'too_big' && iss.origin === 'number')
      return `must be at most ${iss.maximum}, got ${String(iss.input)}`;
    return undefined;
  },
});

export { z };
