export * from './callouts.repository';
export * from './events.repository';
export * from './query';
export * from './requests.repository';
export * from './rows';
export * from './sql';
