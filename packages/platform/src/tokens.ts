/** Injection tokens shared by every app. */
export const APP_CONFIG = Symbol('APP_CONFIG');
export const APP_NAME = Symbol('APP_NAME');
export const REDIS_PROBE = Symbol('REDIS_PROBE');

import { SetMetadata } from '@nestjs/common';

/** Metadata key of routes anyone may call without a token (health, metrics, discovery, token endpoint). */
export const IS_PUBLIC = 'entitle:isPublic';
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);
