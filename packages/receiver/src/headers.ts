/** Request headers as Node, Fastify, Express or the Fetch API give them. */
export type HeaderBag = Headers | Record<string, string | string[] | undefined>;

/** One header's value (the first, when it was sent more than once); names are case-insensitive. */
export function headerOf(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function' && typeof (headers as Headers).has === 'function') {
    return (headers as Headers).get(name) ?? undefined;
  }
  const bag = headers as Record<string, string | string[] | undefined>;
  const lower = name.toLowerCase();
  let value = bag[lower];
  if (value === undefined) {
    const key = Object.keys(bag).find((k) => k.toLowerCase() === lower);
    value = key === undefined ? undefined : bag[key];
  }
  return Array.isArray(value) ? value[0] : value;
}
