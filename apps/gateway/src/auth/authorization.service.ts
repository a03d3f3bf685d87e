import { authorize, DomainError, type Operation } from '@entitle/domain';
import { Injectable } from '@nestjs/common';
import type { Principal } from './principal';

/** The single place endpoints ask "may this caller do this?" (the matrix lives in packages/domain). */
@Injectable()
export class AuthorizationService {
  require(principal: Principal, operation: Operation, catalogId?: string): void {
    const d = authorize(principal.roles, operation, catalogId);
    if (!d.allowed) {
      throw new DomainError(
        'Authorization_RequestDenied',
        `Insufficient privileges: ${d.reason}. ${principal.displayName} (${principal.id}) holds ${this.describe(principal)}.`,
      );
    }
  }

  allowed(principal: Principal, operation: Operation, catalogId?: string): boolean {
    return authorize(principal.roles, operation, catalogId).allowed;
  }

  private describe(p: Principal): string {
    if (p.roles.length === 0) return 'no roles';
    return p.roles.map((r) => (r.catalogId ? `${r.role} on catalog ${r.catalogId}` : r.role)).join(', ');
  }
}
