import 'reflect-metadata';
import { loadConfigOrExit } from '@entitle/config';
import { boot } from '@entitle/platform';
import { APP, AppModule } from './app.module';

async function main(): Promise<void> {
  const config = loadConfigOrExit(APP);
  await boot({
    appName: APP,
    module: AppModule.register(config),
    port: config.healthPort,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
  });
}

void main();
