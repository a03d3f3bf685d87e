import type { HeldRole } from '@entitle/domain';
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';

export { IS_PUBLIC, Public } from '@entitle/platform';

/** The signed-in caller, resolved on every request from a verified token and current roles. */
export interface Principal {
  id: string;
  kind: 'user' | 'servicePrincipal';
  displayName: string;
  appId: string | null;
  userPrincipalName: string | null;
  roles: HeldRole[];
}

export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const req = ctx.switchToHttp().getRequest<{ principal?: Principal }>();
  if (!req.principal) throw new Error('CurrentPrincipal used on a public route');
  return req.principal;
});
