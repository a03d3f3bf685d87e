import type { AppConfig } from '@entitle/config';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';

/** The OpenAPI document of the gateway (Swagger UI at /docs, JSON at /docs-json). */
export function openApiDocument(app: NestFastifyApplication, config: AppConfig): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('Entitle API')
    .setDescription(
      'A Microsoft-Graph-shaped API for entitlement management with custom extensions: catalogs, custom extensions, ' +
        'access packages, assignment policies, requests (with launch-and-wait resume), approvals and assignments. ' +
        'Get a token at POST /oauth2/v2.0/token (client_credentials or password) and send it as a Bearer token.',
    )
    .setVersion('1.0')
    .addServer(config.publicBaseUrl)
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    .build();
  return SwaggerModule.createDocument(app, builder);
}

export function setupOpenApi(app: NestFastifyApplication, config: AppConfig): void {
  SwaggerModule.setup('docs', app, () => openApiDocument(app, config), {
    jsonDocumentUrl: 'docs-json',
    customSiteTitle: 'Entitle API',
  });
}
