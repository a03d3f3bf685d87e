export * from './connection-test';
export * from './payload';
export * from './schema-check';
export * from './sender';
export * from './signer';
export * from './target-url';
export * from './pre-expiration';
export * from './webhook-signatures';
