import { approvalSettings, approvalStageSeconds, DEFAULT_APPROVAL_STAGE_DURATION } from './approval-settings';

describe('approvalSettings (SPEC §2.3, §2.5 defaults)', () => {
  it.each<[string, unknown, boolean, number]>([
    ['nothing set', undefined, false, 0],
    ['null', null, false, 0],
    ['required without stages asks nobody', { isApprovalRequiredForAdd: true, stages: [] }, false, 0],
    ['stages without the flag', { stages: [{}] }, false, 1],
    ['required with a stage', { isApprovalRequiredForAdd: true, stages: [{}] }, true, 1],
    ['a truthy string is not true', { isApprovalRequiredForAdd: 'yes', stages: [{}] }, false, 1],
  ])('%s → required %s, %s stage(s)', (_name, raw, required, count) => {
    const s = approvalSettings(raw);
    expect([s.required, s.stages.length]).toEqual([required, count]);
  });

  it('a stage gets the 14-day default, no justification, and lower-cased approvers', () => {
    const [stage] = approvalSettings({
      isApprovalRequiredForAdd: true,
      stages: [{ primaryApprovers: [{ userId: 'ABC' }, { groupId: 'x' }, { userId: 7 }] }],
    }).stages;
    expect(stage).toEqual({
      primaryApprovers: [{ userId: 'abc' }],
      justificationRequired: false,
      duration: DEFAULT_APPROVAL_STAGE_DURATION,
      durationSeconds: 14 * 86400,
    });
  });

  it.each([
    ['PT1H', 3600],
    ['P2D', 172800],
    [undefined, 14 * 86400],
    ['', 14 * 86400],
    ['nonsense', 14 * 86400],
  ])('stage duration %s → %s s', (duration, seconds) => {
    expect(approvalStageSeconds(duration)).toBe(seconds);
  });
});
