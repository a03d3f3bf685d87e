export * from './data-source';
export * from './migrate';
export * from './migrations';
export * from './repositories';
export * from './odata/page';
export * from './odata/filter-sql';
