import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { EXAMPLES } from '@entitle/dto';
import type { AppConfig } from '@entitle/config';
import { DirectoryRepository, pagePrincipals, type PrincipalRow } from '@entitle/db';
import { DomainError } from '@entitle/domain';
import {
  addPasswordSchema,
  createServicePrincipalSchema,
  createUserSchema,
  type GraphShape,
  parseBody,
  requireGuid,
} from '@entitle/dto';
import { hashSecret, newClientSecret } from '@entitle/identity';
import { APP_CONFIG } from '@entitle/platform';
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AuthorizationService } from '../auth/authorization.service';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { collection, entity, parseCollectionQuery, parseEntityQuery } from '../common/collection';
import { GraphOperation } from '../common/openapi';

const iso = (d: Date): string => new Date(d).toISOString();

export const USER_PROPERTIES = [
  '@odata.type',
  'id',
  'displayName',
  'userPrincipalName',
  'mail',
  'accountEnabled',
  'createdDateTime',
] as const;

export function graphUser(p: PrincipalRow): GraphShape<typeof USER_PROPERTIES> {
  return {
    '@odata.type': '#microsoft.graph.user',
    id: p.id,
    displayName: p.displayName,
    userPrincipalName: p.userPrincipalName,
    mail: p.mail,
    accountEnabled: p.accountEnabled,
    createdDateTime: iso(p.createdAt),
  };
}

export const SERVICE_PRINCIPAL_PROPERTIES = [
  '@odata.type',
  'id',
  'appId',
  'displayName',
  'servicePrincipalType',
  'accountEnabled',
  'createdDateTime',
] as const;

export function graphServicePrincipal(p: PrincipalRow): GraphShape<typeof SERVICE_PRINCIPAL_PROPERTIES> {
  return {
    '@odata.type': '#microsoft.graph.servicePrincipal',
    id: p.id,
    appId: p.appId,
    displayName: p.displayName,
    servicePrincipalType: 'Application',
    accountEnabled: p.accountEnabled,
    createdDateTime: iso(p.createdAt),
  };
}

const USER_FILTER = {
  id: { type: 'guid' },
  displayName: { type: 'string' },
  userPrincipalName: { type: 'string' },
  mail: { type: 'string' },
  accountEnabled: { type: 'boolean' },
  createdDateTime: { type: 'datetime' },
} as const;
const SP_FILTER = {
  id: { type: 'guid' },
  displayName: { type: 'string' },
  appId: { type: 'string' },
  accountEnabled: { type: 'boolean' },
  createdDateTime: { type: 'datetime' },
} as const;

function conflictOnUnique(err: unknown, message: string): never {
  if ((err as { code?: string }).code === '23505') throw new DomainError('Conflict', message);
  throw err;
}

/** The directory (SPEC §5): users and service principals; credentials are stored as slow hashes only. */
@ApiTags('Directory')
@ApiBearerAuth()
@Controller('v1.0')
export class DirectoryController {
  constructor(
    @Inject(DirectoryRepository) private readonly directory: DirectoryRepository,
    @Inject(AuthorizationService) private readonly authz: AuthorizationService,
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @GraphOperation({
    id: 'createUser',
    summary: 'Create a user.',
    status: 201,
    returns: 'User',
    body: 'UserInput',
    example: EXAMPLES.user,
    errors: [400, 403, 409],
  })
  @Post('users')
  @HttpCode(201)
  async createUser(@Body() body: unknown, @CurrentPrincipal() caller: Principal): Promise<Record<string, unknown>> {
    this.authz.require(caller, 'directory.write');
    const input = parseBody(createUserSchema, body, 'user');
    const passwordHash = input.passwordProfile?.password ? await hashSecret(input.passwordProfile.password) : null;
    const row = await this.directory
      .insertPrincipal({
        id: randomUUID(),
        kind: 'user',
        displayName: input.displayName,
        userPrincipalName: input.userPrincipalName,
        mail: input.mail ?? null,
        passwordHash,
      })
      .catch((err: unknown) => conflictOnUnique(err, `userPrincipalName ${input.userPrincipalName} is already taken`));
    return entity(this.config, 'users', graphUser(row));
  }

  @GraphOperation({
    id: 'listUsers',
    summary: 'List users.',
    status: 200,
    returns: 'UserCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400, 403],
  })
  @Get('users')
  async listUsers(
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    this.authz.require(caller, 'directory.read');
    const q = parseCollectionQuery(query, { filter: USER_FILTER, select: USER_PROPERTIES });
    const page = await pagePrincipals(this.ds, 'user', q.filter, q.top, q.after);
    return collection(req, this.config, 'users', page.items.map(graphUser), page.next, q.select);
  }

  @GraphOperation({ id: 'getUser', summary: 'Get a user.', status: 200, returns: 'User', errors: [403, 404] })
  @Get('users/:id')
  async getUser(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    this.authz.require(caller, 'directory.read');
    const q = parseEntityQuery(query, { select: USER_PROPERTIES });
    const row = await this.directory.findPrincipal(requireGuid(id, 'user'));
    if (!row || row.kind !== 'user') throw new DomainError('NotFound', `user ${id} does not exist`);
    return entity(this.config, 'users', graphUser(row), q.select);
  }

  @GraphOperation({
    id: 'createServicePrincipal',
    summary: 'Create a service principal (an application that signs in with client credentials).',
    status: 201,
    returns: 'ServicePrincipal',
    body: 'ServicePrincipalInput',
    example: EXAMPLES.servicePrincipal,
    errors: [400, 403, 409],
  })
  @Post('servicePrincipals')
  @HttpCode(201)
  async createServicePrincipal(
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    this.authz.require(caller, 'directory.write');
    const input = parseBody(createServicePrincipalSchema, body, 'service principal');
    const appId = input.appId ?? randomUUID();
    const row = await this.directory
      .insertPrincipal({ id: randomUUID(), kind: 'servicePrincipal', displayName: input.displayName, appId })
      .catch((err: unknown) => conflictOnUnique(err, `appId ${appId} is already taken`));
    return entity(this.config, 'servicePrincipals', graphServicePrincipal(row));
  }

  @GraphOperation({
    id: 'listServicePrincipals',
    summary: 'List service principals.',
    status: 200,
    returns: 'ServicePrincipalCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400, 403],
  })
  @Get('servicePrincipals')
  async listServicePrincipals(
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    this.authz.require(caller, 'directory.read');
    const q = parseCollectionQuery(query, { filter: SP_FILTER, select: SERVICE_PRINCIPAL_PROPERTIES });
    const page = await pagePrincipals(this.ds, 'servicePrincipal', q.filter, q.top, q.after);
    return collection(
      req,
      this.config,
      'servicePrincipals',
      page.items.map(graphServicePrincipal),
      page.next,
      q.select,
    );
  }

  @GraphOperation({
    id: 'getServicePrincipal',
    summary: 'Get a service principal.',
    status: 200,
    returns: 'ServicePrincipal',
    errors: [403, 404],
  })
  @Get('servicePrincipals/:id')
  async getServicePrincipal(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    this.authz.require(caller, 'directory.read');
    const q = parseEntityQuery(query, { select: SERVICE_PRINCIPAL_PROPERTIES });
    const row = await this.directory.findPrincipal(requireGuid(id, 'service principal'));
    if (!row || row.kind !== 'servicePrincipal')
      throw new DomainError('NotFound', `service principal ${id} does not exist`);
    return entity(this.config, 'servicePrincipals', graphServicePrincipal(row), q.select);
  }

  /** Adds a client secret: shown once in `secretText`, stored only as a slow hash. */
  @GraphOperation({
    id: 'addServicePrincipalPassword',
    summary: 'Add a client secret; it is shown once, in secretText.',
    status: 200,
    returns: 'PasswordCredential',
    body: 'PasswordCredentialInput',
    bodyRequired: false,
    errors: [400, 403, 404],
  })
  @Post('servicePrincipals/:id/addPassword')
  @HttpCode(200)
  async addPassword(
    @Param('id') id: string,
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    this.authz.require(caller, 'directory.write');
    // No body at all is Graph's default credential; a JSON null or any other non-object is refused.
    const input = parseBody(addPasswordSchema, body === undefined ? {} : body, 'password credential');
    const sp = await this.directory.findPrincipal(requireGuid(id, 'service principal'));
    if (!sp || sp.kind !== 'servicePrincipal')
      throw new DomainError('NotFound', `service principal ${id} does not exist`);
    const secret = newClientSecret();
    const keyId = randomUUID();
    const endDateTime = input.passwordCredential?.endDateTime ? new Date(input.passwordCredential.endDateTime) : null;
    const displayName = input.passwordCredential?.displayName ?? null;
    const saved = await this.directory.addSecret({
      id: keyId,
      principalId: sp.id,
      displayName,
      hint: secret.slice(0, 3),
      hash: await hashSecret(secret),
      endDateTime,
    });
    return {
      '@odata.context': `${this.config.publicBaseUrl}/v1.0/$metadata#microsoft.graph.passwordCredential`,
      customKeyIdentifier: null,
      displayName,
      endDateTime: endDateTime ? endDateTime.toISOString() : null,
      hint: secret.slice(0, 3),
      keyId,
      secretText: secret,
      startDateTime: iso(saved.createdAt),
    };
  }
}
