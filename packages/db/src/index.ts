export * from './data-source';
export * from './entities/entities';
export * from './migrate';
export * from './migrations';
export * from './repositories';
export * from './odata/page';
export * from './seed';
export * from './odata/filter-sql';
