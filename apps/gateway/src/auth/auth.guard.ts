import { DirectoryRepository } from '@entitle/db';
import { DomainError } from '@entitle/domain';
import { InvalidTokenError, TokenService } from '@entitle/identity';
import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { IS_PUBLIC, type Principal } from './principal';

function unauthorized(message: string): DomainError {
  return new DomainError('InvalidAuthenticationToken', message);
}

/**
 * Every route needs a valid bearer token unless it is @Public(). The token is verified (our keys,
 * or a configured external issuer), the principal looked up, and its roles read from the database
 * on every call, so a revoked role or disabled account stops working at once.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(TokenService) private readonly tokens: TokenService,
    @Inject(DirectoryRepository) private readonly directory: DirectoryRepository,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const req = context.switchToHttp().getRequest<FastifyRequest & { principal?: Principal }>();
    const header = req.headers.authorization;
    if (!header)
      throw unauthorized(
        'Access token is empty: send "Authorization: Bearer <token>" (get one from POST /oauth2/v2.0/token).',
      );
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw unauthorized('The Authorization header must be "Bearer <token>".');
    let subject;
    try {
      subject = await this.tokens.verify(m[1] as string);
    } catch (err) {
      if (err instanceof InvalidTokenError) throw unauthorized(`Access token validation failure: ${err.message}.`);
      throw err;
    }
    const principal = await this.directory.findWithRoles(subject.match, subject.value);
    if (!principal)
      throw unauthorized(`Access token validation failure: the principal it names (${subject.value}) does not exist.`);
    if (!principal.accountEnabled) throw unauthorized(`The account ${principal.displayName} is disabled.`);
    req.principal = {
      id: principal.id,
      kind: principal.kind,
      displayName: principal.displayName,
      appId: principal.appId,
      userPrincipalName: principal.userPrincipalName,
      roles: principal.roles,
    };
    return true;
  }
}
