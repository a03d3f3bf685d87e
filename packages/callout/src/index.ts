export * from './payload';
export * from './schema-check';
export * from './sender';
