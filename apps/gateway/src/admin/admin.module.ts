import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { BullBoardModule } from '@bull-board/nestjs';
import { ALL_QUEUES } from '@entitle/queue-contracts';
import { Global, Module } from '@nestjs/common';
import { AdminController } from './admin.controller';
import { EventHub } from './event-hub';

/** Operators' views: bull-board over every queue at /admin/queues, and the waiting-requests page. */
@Global()
@Module({
  imports: [
    BullBoardModule.forRoot({
      route: '/admin/queues',
      adapter: FastifyAdapter,
      boardOptions: { uiConfig: { boardTitle: 'Entitle queues' } },
    }),
    BullBoardModule.forFeature(...ALL_QUEUES.map((q) => ({ name: q.name, adapter: BullMQAdapter }))),
  ],
  controllers: [AdminController],
  providers: [EventHub],
  exports: [EventHub],
})
export class AdminModule {}
