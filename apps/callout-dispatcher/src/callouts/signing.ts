import { CalloutSigner } from '@entitle/callout';
import type { AppConfig } from '@entitle/config';
import { KeyStore } from '@entitle/identity';
import { APP_CONFIG } from '@entitle/platform';
import type { Provider } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** The issuer's persisted keys (shared with the gateway) and the callout signer built on them. */
export const signingProviders: Provider[] = [
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
    provide: CalloutSigner,
    inject: [KeyStore, APP_CONFIG],
    useFactory: (keys: KeyStore, config: AppConfig) =>
      new CalloutSigner({
        issuer: config.publicBaseUrl,
        appId: config.appId,
        activeKey: () => keys.activeKey(),
        tokenLifetimeSeconds: 600,
      }),
  },
];
