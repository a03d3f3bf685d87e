import type { AppConfig } from '@entitle/config';
import { KeyStore, TokenService } from '@entitle/identity';
import { APP_CONFIG } from '@entitle/platform';
import { Global, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuthorizationService } from './authorization.service';
import { BootstrapService } from './bootstrap.service';
import { DiscoveryController } from './discovery.controller';
import { OAuthController } from './oauth.controller';
import { SignInService } from './sign-in.service';

/** The OAuth issuer (SPEC §3.1, §5): keys, tokens, sign-in, the bootstrap application. */
@Global()
@Module({
  controllers: [OAuthController, DiscoveryController],
  providers: [
    {
      provide: KeyStore,
      inject: [DataSource, APP_CONFIG],
      useFactory: (ds: DataSource, config: AppConfig) =>
        new KeyStore(ds, {
          maxTokenLifetimeSeconds: config.tokenLifetimeSeconds,
          reloadMs: 10_000,
          keyEncryptionKey: config.keyEncryptionKey,
        }),
    },
    {
      provide: TokenService,
      inject: [KeyStore, APP_CONFIG],
      useFactory: (keys: KeyStore, config: AppConfig) =>
        new TokenService(keys, {
          issuer: config.publicBaseUrl,
          audience: config.publicBaseUrl,
          lifetimeSeconds: config.tokenLifetimeSeconds,
          externalIssuers: [...config.externalIssuers],
        }),
    },
    AuthorizationService,
    SignInService,
    BootstrapService,
  ],
  exports: [KeyStore, TokenService, AuthorizationService, SignInService],
})
export class IdentityModule {}
