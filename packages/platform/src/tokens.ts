/** Injection tokens shared by every app. */
export const APP_CONFIG = Symbol('APP_CONFIG');
export const APP_NAME = Symbol('APP_NAME');
export const REDIS_PROBE = Symbol('REDIS_PROBE');
