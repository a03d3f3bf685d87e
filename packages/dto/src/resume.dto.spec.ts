import { isDomainError } from '@entitle/domain';
import { EXAMPLES } from './examples';
import { parseResume } from './resume.dto';

const INSTANCE = '957d0c50-466b-4840-bb5b-c92cea7141ff';

function body(overrides: { type?: unknown; data?: Record<string, unknown> } = {}): Record<string, unknown> {
  const b: Record<string, unknown> = {
    source: 'test',
    type: 'microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestCreated',
    data: {
      '@odata.type': 'microsoft.graph.accessPackageAssignmentRequestCallbackData',
      stage: 'assignmentRequestCreated',
      customExtensionStageInstanceId: INSTANCE,
      ...overrides.data,
    },
  };
  if ('type' in overrides) {
    if (overrides.type === undefined) delete b.type;
    else b.type = overrides.type;
  }
  return b;
}

function refusal(input: unknown): { code: string; message: string } {
  try {
    parseResume(input);
  } catch (err) {
    if (isDomainError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('parseResume accepted the body');
}

describe('parseResume', () => {
  it("accepts Microsoft's sample and a type in any casing that names the same stage", () => {
    expect(parseResume(EXAMPLES.resume)).toMatchObject({ stage: 'assignmentRequestCreated', decision: 'continue' });
    const r = parseResume(
      body({
        type: 'Microsoft.Graph.AccessPackageCustomExtensionStage.AssignmentRequestApproved',
        data: { stage: 'assignmentRequestApproved', customExtensionStageInstanceId: INSTANCE.toUpperCase() },
      }),
    );
    expect(r).toMatchObject({ stage: 'assignmentRequestApproved', instanceId: INSTANCE });
  });

  it('refuses a type that is missing, null, empty, garbage, of the wrong kind or names another stage, naming type', () => {
    const cases: unknown[] = [
      undefined,
      null,
      '',
      '   ',
      'garbage',
      42,
      ['microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestCreated'],
      'microsoft.graph.accessPackageCustomExtensionStage.',
      'microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestApproved',
      'microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestExploded',
      'assignmentRequestCreated',
    ];
    for (const type of cases) {
      const r = refusal(body({ type }));
      expect({ type, code: r.code }).toEqual({ type, code: 'InvalidProperty' });
      expect(r.message).toMatch(/\btype\b/);
    }
  });

  it('refuses an instance id that is not a GUID, naming the field', () => {
    for (const id of ['not-a-guid', '', '957d0c50-466b-4840-bb5b-c92cea7141f', `${INSTANCE}x`, 42, null]) {
      const r = refusal(body({ data: { customExtensionStageInstanceId: id } }));
      expect({ id, code: r.code }).toEqual({ id, code: 'InvalidProperty' });
      expect(r.message).toContain('data.customExtensionStageInstanceId');
    }
  });

  it('refuses bodies that are not objects', () => {
    for (const b of [null, [], 'x', 1]) expect(refusal(b).code).toBe('BadRequest');
  });
});
