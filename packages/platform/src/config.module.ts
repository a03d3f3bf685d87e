import type { AppConfig } from '@entitle/config';
import { type DynamicModule, Global, Module } from '@nestjs/common';
import { APP_CONFIG, APP_NAME } from './tokens';

/** Makes the parsed, frozen configuration and the app's name injectable everywhere. */
@Global()
@Module({})
export class AppConfigModule {
  static forRoot(appName: string, config: AppConfig): DynamicModule {
    return {
      module: AppConfigModule,
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: APP_NAME, useValue: appName },
      ],
      exports: [APP_CONFIG, APP_NAME],
    };
  }
}
