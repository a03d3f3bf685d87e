import { Injectable } from '@nestjs/common';
import { EventEmitter } from 'node:events';

/** Domain events received from the bus, fanned out in-process to live views (server-sent events). */
@Injectable()
export class EventHub {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(1000);
  }

  emit(name: string, event: unknown): void {
    this.emitter.emit('event', { name, event });
  }

  subscribe(fn: (e: { name: string; event: unknown }) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }
}
