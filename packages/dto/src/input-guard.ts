/**
 * Text PostgreSQL cannot store, found before anything reaches a query. PostgreSQL refuses U+0000 in
 * `text` and in `jsonb` (22021 / 22P05), and a lone UTF-16 surrogate either fails in `jsonb` or is
 * silently replaced by U+FFFD in `text`; a deeply nested value overflows the server's JSON parser
 * (54001). Each would otherwise surface as a 500 or as changed data, so the gateway refuses them at
 * the edge, for every route, naming where the value was.
 */

/** Deeper than any Graph body this API takes (a policy reaches 5); far below what would hurt a parser. */
export const MAX_INPUT_DEPTH = 32;

export interface InputProblem {
  /** Where the value was: `displayName`, `data.customExtensionStageInstanceDetail`, `stages[0].id`, `$filter`. */
  path: string;
  /** The rule it broke, in words. */
  problem: string;
}

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function textProblem(text: string): string | undefined {
  if (text.includes('\u0000')) return 'contains U+0000 (NUL), which cannot be stored';
  const m = LONE_SURROGATE.exec(text);
  if (m) {
    const code = m[0].charCodeAt(0).toString(16).toUpperCase();
    return `contains an unpaired UTF-16 surrogate (U+${code}); send well-formed Unicode`;
  }
  return undefined;
}

function childPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  const safe = /^[A-Za-z0-9_@.$-]+$/.test(key) ? key : JSON.stringify(key);
  return parent ? `${parent}.${safe}` : safe;
}

/**
 * The first string (value or property name, at any depth) PostgreSQL could not store, or the first
 * place nested deeper than `maxDepth`; undefined when the value is clean. Iterative, so a hostile
 * nesting cannot exhaust the stack.
 */
export function findInputProblem(value: unknown, root = '', maxDepth = MAX_INPUT_DEPTH): InputProblem | undefined {
  const stack: Array<{ value: unknown; path: string; depth: number }> = [{ value, path: root, depth: 0 }];
  while (stack.length) {
    const item = stack.pop() as { value: unknown; path: string; depth: number };
    const v = item.value;
    if (typeof v === 'string') {
      const problem = textProblem(v);
      if (problem) return { path: item.path || '(body)', problem };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (item.depth >= maxDepth)
      return { path: item.path || '(body)', problem: `is nested deeper than ${maxDepth} levels` };
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--)
        stack.push({ value: v[i] as unknown, path: childPath(item.path, i), depth: item.depth + 1 });
      continue;
    }
    const keys = Object.keys(v);
    for (const key of keys) {
      const problem = textProblem(key);
      if (problem) return { path: item.path || '(body)', problem: `has a property name that ${problem}` };
    }
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string;
      stack.push({
        value: (v as Record<string, unknown>)[key],
        path: childPath(item.path, key),
        depth: item.depth + 1,
      });
    }
  }
  return undefined;
}
