import { formatIsoDuration, parseIsoDuration } from './duration';

describe('ISO-8601 durations', () => {
  it.each([
    ['PT5M', 300],
    ['PT1H', 3600],
    ['P14D', 14 * 86400],
    ['P1DT2H3M4S', 86400 + 7200 + 180 + 4],
    ['PT2S', 2],
    ['P2W', 14 * 86400],
    ['pt10m', 600],
  ])('%s is %i seconds', (text, seconds) => {
    expect(parseIsoDuration(text)).toBe(seconds);
  });

  it.each(['banana', 'P', 'PT', 'P1M', 'P1Y', '5M', ''])('%j is not a duration', (text) => {
    expect(parseIsoDuration(text)).toBeUndefined();
  });

  it('formats canonically and round-trips', () => {
    expect(formatIsoDuration(3600)).toBe('PT1H');
    expect(formatIsoDuration(600)).toBe('PT10M');
    expect(formatIsoDuration(14 * 86400)).toBe('P14D');
    expect(formatIsoDuration(3)).toBe('PT3S');
    for (const s of [1, 59, 61, 3599, 86401, 1209600]) expect(parseIsoDuration(formatIsoDuration(s))).toBe(s);
  });
});
