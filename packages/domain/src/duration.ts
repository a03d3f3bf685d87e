/**
 * ISO-8601 durations as Graph uses them (`PT5M`, `P14D`, `P1DT2H`). Years and months are refused:
 * their length in seconds is not fixed, and no timeout in this product needs them.
 */
const DURATION =
  /^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** Seconds in the duration, or undefined when `value` is not a duration of this form. */
export function parseIsoDuration(value: string): number | undefined {
  const m = DURATION.exec(value.trim().toUpperCase());
  if (!m || value.trim().toUpperCase() === 'P' || value.trim().endsWith('T')) return undefined;
  const [w, d, h, min, s] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x))) as [
    number,
    number,
    number,
    number,
    number,
  ];
  return w * 604800 + d * 86400 + h * 3600 + min * 60 + s;
}

/** Canonical form: the largest whole units, e.g. 3600 → `PT1H`, 90061 → `P1DT1H1M1S`. */
export function formatIsoDuration(totalSeconds: number): string {
  let rest = Math.max(0, Math.round(totalSeconds * 1000) / 1000);
  const days = Math.floor(rest / 86400);
  rest -= days * 86400;
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  rest -= minutes * 60;
  const seconds = Math.round(rest * 1000) / 1000;
  let out = 'P';
  if (days) out += `${days}D`;
  if (hours || minutes || seconds || !days) {
    out += 'T';
    if (hours) out += `${hours}H`;
    if (minutes) out += `${minutes}M`;
    if (seconds || (!hours && !minutes)) out += `${seconds}S`;
  }
  return out;
}
