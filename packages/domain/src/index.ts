export * from './authorization';
export * from './callout';
export * from './duration';
export * from './errors';
export * from './request-machine';
export * from './stages';
export * from './odata-ast';
