import { isGuid, isIsoDateTime } from './validation';

describe('isIsoDateTime', () => {
  it('accepts ISO-8601 date-times PostgreSQL reads as the same instant', () => {
    for (const s of [
      '2026-01-01T00:00:00Z',
      '2026-01-01T00:00Z',
      '2024-02-29T23:59:59.123456789Z',
      '2026-06-30T12:00:00+02:00',
      '0001-01-01T00:00:00Z',
      '9999-12-31T23:59:59Z',
      '2026-01-01T00:00:00',
    ])
      expect({ s, ok: isIsoDateTime(s) }).toEqual({ s, ok: true });
  });

  it('refuses what Date.parse would stretch or PostgreSQL would refuse', () => {
    for (const s of [
      '1',
      '2026',
      '2026-01-01',
      '2026-02-30T00:00:00Z',
      '2025-02-29T00:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-01-01T24:00:00Z',
      '2026-01-01T00:60:00Z',
      '2026-01-01T00:00:00+24:00',
      '0000-01-01T00:00:00Z',
      '-271821-04-20T00:00:00Z',
      '+275760-09-13T00:00:00Z',
      '2026-01-01T00:00:00Z junk',
      'Infinity',
    ])
      expect({ s, ok: isIsoDateTime(s) }).toEqual({ s, ok: false });
  });
});

describe('isGuid', () => {
  it('takes only the 8-4-4-4-12 hex form', () => {
    expect(isGuid('957d0c50-466b-4840-bb5b-c92cea7141ff')).toBe(true);
    expect(isGuid('957D0C50-466B-4840-BB5B-C92CEA7141FF')).toBe(true);
    for (const v of [
      '------------------------------------',
      '957d0c50466b4840bb5bc92cea7141ff',
      '{957d0c50-466b-4840-bb5b-c92cea7141ff}',
      42,
      null,
    ])
      expect(isGuid(v)).toBe(false);
  });
});
