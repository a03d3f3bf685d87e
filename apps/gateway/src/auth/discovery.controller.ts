import { ApiTags } from '@nestjs/swagger';
import type { AppConfig } from '@entitle/config';
import { KeyStore } from '@entitle/identity';
import { APP_CONFIG } from '@entitle/platform';
import { Controller, Get, Header, Inject } from '@nestjs/common';
import { Public } from './principal';
import { GraphOperation } from '../common/openapi';

/** OpenID discovery and the JWKS (SPEC §3.1): receivers verify our tokens with these alone. */
@Public()
@ApiTags('OAuth')
@Controller()
export class DiscoveryController {
  constructor(
    @Inject(KeyStore) private readonly keys: KeyStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @GraphOperation({
    id: 'getOpenIdConfiguration',
    summary: 'OpenID discovery document.',
    status: 200,
    returns: 'OpenIdConfiguration',
    public: true,
  })
  @Get('.well-known/openid-configuration')
  @Header('cache-control', 'public, max-age=300')
  discovery(): Record<string, unknown> {
    const base = this.config.publicBaseUrl;
    return {
      issuer: base,
      token_endpoint: `${base}/oauth2/v2.0/token`,
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_types_supported: ['token'],
      grant_types_supported: this.config.passwordGrant ? ['client_credentials', 'password'] : ['client_credentials'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_post'],
      claims_supported: [
        'iss',
        'aud',
        'sub',
        'oid',
        'appid',
        'azp',
        'idtyp',
        'name',
        'upn',
        'exp',
        'iat',
        'nbf',
        'jti',
      ],
    };
  }

  @GraphOperation({
    id: 'getSigningKeys',
    summary: 'The public keys (JWKS) that verify this system’s tokens.',
    status: 200,
    returns: 'Jwks',
    public: true,
  })
  @Get('discovery/v2.0/keys')
  @Header('cache-control', 'public, max-age=60')
  async jwks(): Promise<unknown> {
    return this.keys.jwks();
  }
}
