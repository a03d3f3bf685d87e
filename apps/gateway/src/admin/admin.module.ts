import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { ControllerHandlerReturnType, HookContext } from '@bull-board/api/dist/types.js';
import { FastifyAdapter } from '@bull-board/fastify';
import { BullBoardModule } from '@bull-board/nestjs';
import { ALL_QUEUES } from '@entitle/queue-contracts';
import { Global, Module } from '@nestjs/common';
import { ADMIN_ACCESS_HEADER } from './admin-gate';
import { AdminController } from './admin.controller';
import { EventHub } from './event-hub';

/**
 * For a read-only user (the admin gate's verdict) the queue list presents every queue read-only,
 * so bull-board's UI hides its retry, clean, promote and pause buttons. This is presentation only:
 * the gate itself refuses such a user's writes with 403.
 */
export function presentReadOnly(
  context: HookContext,
  result: ControllerHandlerReturnType,
): ControllerHandlerReturnType {
  if (context.route !== '/api/queues' || context.request.headers[ADMIN_ACCESS_HEADER] !== 'readOnly') return result;
  const body = result.body as { queues?: unknown };
  if (!Array.isArray(body.queues)) return result;
  const queues = (body.queues as Array<Record<string, unknown>>).map((q) => ({
    ...q,
    readOnlyMode: true,
    allowRetries: false,
    allowCompletedRetries: false,
  }));
  return { ...result, body: { ...body, queues } };
}

/** Operators' views: bull-board over every queue at /admin/queues, and the waiting-requests page. */
@Global()
@Module({
  imports: [
    BullBoardModule.forRoot({
      route: '/admin/queues',
      adapter: FastifyAdapter,
      boardOptions: { uiConfig: { boardTitle: 'Entitle queues' }, handlerHooks: { after: presentReadOnly } },
    }),
    BullBoardModule.forFeature(...ALL_QUEUES.map((q) => ({ name: q.name, adapter: BullMQAdapter }))),
  ],
  controllers: [AdminController],
  providers: [EventHub],
  exports: [EventHub],
})
export class AdminModule {}
