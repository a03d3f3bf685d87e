import { Foundation1764100000000 } from './1764100000000-foundation';

/** Every migration, oldest first. A new migration is appended here and never edited once shipped. */
export const MIGRATIONS = [Foundation1764100000000];
