export * from './graph';
export * from './requests.dto';
export * from './validation';
