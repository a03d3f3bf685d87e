export * from './keys';
export * from './passwords';
export * from './tokens';
export * from './capability-tokens';
