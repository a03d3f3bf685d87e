export * from './directory.dto';
export * from './extensions.dto';
export * from './graph';
export * from './packages.dto';
export * from './requests.dto';
export * from './resume.dto';
export * from './validation';
export * from './odata/filter';
