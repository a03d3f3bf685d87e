import type { AppConfig } from '@entitle/config';
import {
  AppConfigModule,
  DatabaseModule,
  EventsModule,
  HealthModule,
  loggerModule,
  MetricsModule,
  QueuesModule,
} from '@entitle/platform';
import { WorkflowModule } from '@entitle/workflow';
import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { ApprovalsController } from './approvals/approvals.controller';
import { AssignmentsController } from './assignments/assignments.controller';
import { AdminModule } from './admin/admin.module';
import { AuthGuard } from './auth/auth.guard';
import { CallbacksController } from './callbacks/callbacks.controller';
import { CalloutsController } from './callouts/callouts.controller';
import { IdentityModule } from './auth/identity.module';
import { CatalogsController } from './catalogs/catalogs.controller';
import { GraphExceptionFilter } from './common/graph-exception.filter';
import { ExtensionsController } from './extensions/extensions.controller';
import { AccessPackagesController } from './packages/access-packages.controller';
import { PoliciesController } from './packages/policies.controller';
import { DirectoryController } from './directory/directory.controller';
import { RoleAssignmentsController } from './directory/role-assignments.controller';
import { OidcService } from './auth/oidc.service';
import { SsoController } from './auth/sso.controller';
import { LiveFeed } from './myaccess/live-feed';
import { MyAccessController } from './myaccess/myaccess.controller';
import { RequestsController } from './requests/requests.controller';
import { RequestsService } from './requests/requests.service';

export const APP = 'gateway';

@Module({})
export class AppModule {
  static register(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(APP, config),
        loggerModule(APP, config),
        DatabaseModule,
        // The gateway only produces: its Redis connection fails fast so an outage is a 503, not a hang.
        QueuesModule.forRoot({ producerOnly: true }),
        EventsModule,
        HealthModule,
        MetricsModule,
        IdentityModule,
        AdminModule,
        WorkflowModule,
      ],
      controllers: [
        CatalogsController,
        ExtensionsController,
        AccessPackagesController,
        PoliciesController,
        AssignmentsController,
        ApprovalsController,
        DirectoryController,
        RoleAssignmentsController,
        RequestsController,
        CallbacksController,
        CalloutsController,
        MyAccessController,
        SsoController,
      ],
      providers: [
        { provide: APP_FILTER, useClass: GraphExceptionFilter },
        { provide: APP_GUARD, useClass: AuthGuard },
        RequestsService,
        LiveFeed,
        OidcService,
      ],
    };
  }
}
