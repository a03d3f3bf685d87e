export * from './data-source';
export * from './entities/entities';
export * from './migrate';
export * from './migrations';
export * from './repositories';
export * from './seed';
