import { REQUEST_TYPES, type RequestType } from '@entitle/domain';
import { z } from './errors-map';
import { enumValue, guid, isoDateTime } from './validation';

const requestType = z
  .unknown()
  .transform((v, ctx): RequestType => {
    const t = enumValue(REQUEST_TYPES, v);
    if (!t || t === 'systemRemove') {
      ctx.addIssue({
        code: 'custom',
        message: `unknown value ${JSON.stringify(v)}; expected one of userAdd, adminAdd, userRemove, adminRemove`,
      });
      return z.NEVER;
    }
    return t;
  })
  .meta({ type: 'string', enum: ['userAdd', 'adminAdd', 'userRemove', 'adminRemove'] });

export const requestScheduleSchema = z
  .object({
    startDateTime: isoDateTime.optional(),
    expiration: z
      .object({
        type: z.string().max(64).optional(),
        endDateTime: isoDateTime.optional(),
        duration: z.string().max(64).optional(),
      })
      .loose()
      .optional(),
  })
  .loose();

/** POST /assignmentRequests (SPEC §2.4). Unknown properties are ignored, as Graph does. */
export const createAssignmentRequestSchema = z
  .object({
    requestType,
    assignment: z
      .object(
        {
          id: guid.optional(),
          targetId: guid.optional(),
          assignmentPolicyId: guid.optional(),
          accessPackageId: guid.optional(),
        },
        { error: (iss) => (iss.input === undefined ? 'required' : `expected an object, got ${typeof iss.input}`) },
      )
      .loose(),
    justification: z.string().max(4000).nullish(),
    answers: z.array(z.unknown()).max(100).optional(),
    schedule: requestScheduleSchema.optional(),
  })
  .loose();

export type CreateAssignmentRequestInput = z.output<typeof createAssignmentRequestSchema>;
