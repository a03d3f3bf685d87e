// Runs once per jest run: builds the migrated template database that every test file clones.
// It needs the packages built (`pnpm build`), as the README's test command does first.
module.exports = async function globalSetup() {
  if (globalThis.__entitleTemplateReady) return;
  const { prepareTemplate } = require('../packages/testing/dist');
  await prepareTemplate();
  globalThis.__entitleTemplateReady = true;
};
