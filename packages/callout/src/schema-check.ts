/**
 * Checks a value against the JSON-schema subset that Microsoft's sample Logic App trigger schemas
 * use (type, properties): every property present has the declared type, at every level. Returns
 * the list of violations (empty when the body validates).
 */
export interface TriggerSchema {
  type?: string;
  properties?: Record<string, TriggerSchema>;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

export function checkTriggerSchema(value: unknown, schema: TriggerSchema, path = '$'): string[] {
  const problems: string[] = [];
  if (schema.type && typeOf(value) !== schema.type) {
    problems.push(`${path}: expected ${schema.type}, got ${typeOf(value)}`);
    return problems;
  }
  if (schema.properties && value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, sub] of Object.entries(schema.properties)) {
      if (key in (value as Record<string, unknown>))
        problems.push(...checkTriggerSchema((value as Record<string, unknown>)[key], sub, `${path}.${key}`));
    }
  }
  return problems;
}
