import { ApiTags } from '@nestjs/swagger';
import { DomainError } from '@entitle/domain';
import { Body, Controller, HttpCode, Inject, Post, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Public } from './principal';
import { OAuthError, SignInService } from './sign-in.service';
import { GraphOperation } from '../common/openapi';

/**
 * The token request's parameters. RFC 6749 §3.2: each parameter is a string sent at most once; a
 * repeated one (an array here), or a JSON body with numbers or objects, is invalid_request before
 * any lookup or sign-in failure is recorded.
 */
function tokenParameters(body: unknown): Record<string, string | undefined> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body))
    throw new OAuthError(400, 'invalid_request', 'The token request must be a form-encoded set of parameters.');
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
    if (Array.isArray(value)) throw new OAuthError(400, 'invalid_request', `${name} may be sent only once.`);
    if (typeof value !== 'string')
      throw new OAuthError(400, 'invalid_request', `${name} must be a string parameter (form-encoded).`);
    if (value.length > 4096) throw new OAuthError(400, 'invalid_request', `${name} is longer than 4096 characters.`);
    out[name] = value;
  }
  return out;
}

/** POST /oauth2/v2.0/token (SPEC §5): form-encoded, RFC 6749 answers and errors. */
@Public()
@ApiTags('OAuth')
@Controller('oauth2/v2.0')
export class OAuthController {
  constructor(@Inject(SignInService) private readonly signIn: SignInService) {}

  @GraphOperation({
    id: 'requestToken',
    summary: 'Get an access token (client_credentials, or password when enabled).',
    status: 200,
    returns: 'TokenResponse',
    body: 'TokenRequest',
    form: true,
    public: true,
    oauthErrors: true,
    errors: [400, 401, 503],
  })
  @Post('token')
  @HttpCode(200)
  async token(@Body() body: unknown, @Res() reply: FastifyReply): Promise<void> {
    void reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    try {
      const form = tokenParameters(body);
      const grant = form.grant_type;
      let issued;
      if (grant === 'client_credentials')
        issued = await this.signIn.clientCredentials(form.client_id, form.client_secret);
      else if (grant === 'password') issued = await this.signIn.password(form.username, form.password);
      else if (!grant)
        throw new OAuthError(400, 'invalid_request', 'grant_type is required (client_credentials or password).');
      else
        throw new OAuthError(
          400,
          'unsupported_grant_type',
          `grant_type ${JSON.stringify(grant)} is not supported; use client_credentials or password.`,
        );
      void reply.status(200).send({
        access_token: issued.accessToken,
        token_type: 'Bearer',
        expires_in: issued.expiresIn,
        ext_expires_in: issued.expiresIn,
      });
    } catch (err) {
      if (err instanceof OAuthError) {
        if (err.retryAfterSeconds) void reply.header('retry-after', String(err.retryAfterSeconds));
        void reply.status(err.status).send({ error: err.error, error_description: err.description });
        return;
      }
      if (err instanceof DomainError && err.code === 'ServiceUnavailable') {
        void reply.status(503).send({ error: 'temporarily_unavailable', error_description: err.message });
        return;
      }
      throw err;
    }
  }
}
