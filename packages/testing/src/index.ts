export * from './database';
export * from './env';
export * from './eventually';
export * from './factories';
export * from './otlp-receiver';
export * from './processes';
export * from './receiver';
export * from './redis-cluster';
