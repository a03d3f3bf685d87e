import { z } from './errors-map';
import { enumValue, guid, isoDateTime } from './validation';

export const displayName = z.string().trim().min(1).max(256);

/** POST /v1.0/users (SPEC §5). */
export const createUserSchema = z
  .object({
    displayName,
    userPrincipalName: z
      .string()
      .trim()
      .min(3)
      .max(256)
      .regex(/^[^@\s]+@[^@\s]+$/, 'expected name@domain'),
    mail: z
      .string()
      .trim()
      .max(256)
      .regex(/^[^@\s]+@[^@\s]+$/, 'expected an e-mail address')
      .nullish(),
    accountEnabled: z.boolean().optional(),
    passwordProfile: z
      .object({ password: z.string().min(8).max(256), forceChangePasswordNextSignIn: z.boolean().optional() })
      .loose()
      .optional(),
  })
  .loose();
export type CreateUserInput = z.output<typeof createUserSchema>;

/** POST /v1.0/servicePrincipals. Graph creates the application too; here appId is generated unless given. */
export const createServicePrincipalSchema = z
  .object({
    displayName,
    appId: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'expected an application id')
      .optional(),
    accountEnabled: z.boolean().optional(),
  })
  .loose();
export type CreateServicePrincipalInput = z.output<typeof createServicePrincipalSchema>;

export const addPasswordSchema = z
  .object({
    passwordCredential: z
      .object({
        displayName: z.string().max(256).nullish(),
        endDateTime: isoDateTime.nullish(),
      })
      .loose()
      .optional(),
  })
  .loose();

export const directoryRoleAssignmentSchema = z
  .object({ principalId: guid, roleDefinitionId: guid, directoryScopeId: z.string().optional().default('/') })
  .loose();

export const catalogRoleAssignmentSchema = z
  .object({ principalId: guid, roleDefinitionId: guid, appScopeId: z.string().min(1) })
  .loose();

const CATALOG_STATES = ['published', 'unpublished'] as const;
const catalogState = z
  .unknown()
  .transform((v, ctx) => {
    const s = enumValue(CATALOG_STATES, v);
    if (!s) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown value ${JSON.stringify(v)}; expected published or unpublished`,
      });
      return z.NEVER;
    }
    return s;
  })
  .meta({ type: 'string', enum: [...CATALOG_STATES] });
const catalogType = z
  .unknown()
  .transform((v, ctx) => {
    const s = enumValue(['userManaged'] as const, v);
    if (!s) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown value ${JSON.stringify(v)}; only userManaged catalogs can be created`,
      });
      return z.NEVER;
    }
    return s;
  })
  .meta({ type: 'string', enum: ['userManaged'] });

/** POST /catalogs (SPEC §2.1). */
export const createCatalogSchema = z
  .object({
    displayName,
    description: z.string().max(4000).nullish(),
    state: catalogState.optional(),
    isExternallyVisible: z.boolean().optional(),
    catalogType: catalogType.optional(),
  })
  .loose();
export type CreateCatalogInput = z.output<typeof createCatalogSchema>;

/** PATCH /catalogs/{id}: any subset. */
export const updateCatalogSchema = z
  .object({
    displayName: displayName.optional(),
    description: z.string().max(4000).nullish(),
    state: catalogState.optional(),
    isExternallyVisible: z.boolean().optional(),
  })
  .loose();
export type UpdateCatalogInput = z.output<typeof updateCatalogSchema>;
