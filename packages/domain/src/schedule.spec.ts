import { assignmentSchedule, type ExpirationSetting, type ScheduleSetting } from './schedule';

const now = new Date('2026-12-01T00:00:00Z');
const iso = (d: Date | null) => (d === null ? null : d.toISOString());

describe('assignmentSchedule (SPEC §2.6 precedence)', () => {
  it.each<[string, ScheduleSetting | null, ExpirationSetting | null, string, string | null]>([
    ['nothing anywhere: starts now, never ends', null, null, '2026-12-01T00:00:00.000Z', null],
    ['policy noExpiration', null, { type: 'noExpiration' }, '2026-12-01T00:00:00.000Z', null],
    [
      'policy duration from now',
      null,
      { type: 'afterDuration', duration: 'P7D' },
      '2026-12-01T00:00:00.000Z',
      '2026-12-08T00:00:00.000Z',
    ],
    [
      'policy end time',
      null,
      { type: 'afterDateTime', endDateTime: '2027-01-01T00:00:00Z' },
      '2026-12-01T00:00:00.000Z',
      '2027-01-01T00:00:00.000Z',
    ],
    [
      'request end time beats the policy',
      { expiration: { endDateTime: '2026-12-24T00:00:00Z' } },
      { type: 'afterDuration', duration: 'P7D' },
      '2026-12-01T00:00:00.000Z',
      '2026-12-24T00:00:00.000Z',
    ],
    [
      'request noExpiration beats a policy end',
      { expiration: { type: 'noExpiration' } },
      { type: 'afterDateTime', endDateTime: '2027-01-01T00:00:00Z' },
      '2026-12-01T00:00:00.000Z',
      null,
    ],
    [
      'request duration counts from its own start',
      { startDateTime: '2026-12-10T00:00:00Z', expiration: { duration: 'PT12H' } },
      null,
      '2026-12-10T00:00:00.000Z',
      '2026-12-10T12:00:00.000Z',
    ],
    [
      'policy duration counts from the request start',
      { startDateTime: '2026-12-10T00:00:00Z' },
      { duration: 'P1D' },
      '2026-12-10T00:00:00.000Z',
      '2026-12-11T00:00:00.000Z',
    ],
    [
      'an unusable request expiration leaves it to the policy',
      { expiration: { endDateTime: 'not a date', duration: 'soon' } },
      { duration: 'P1D' },
      '2026-12-01T00:00:00.000Z',
      '2026-12-02T00:00:00.000Z',
    ],
    ['an unusable start is now', { startDateTime: 'garbage' }, null, '2026-12-01T00:00:00.000Z', null],
  ])('%s', (_name, request, policy, start, end) => {
    const s = assignmentSchedule(request, policy, now);
    expect([iso(s.startAt), iso(s.endAt)]).toEqual([start, end]);
  });
});
