import { randomUUID } from 'node:crypto';

/**
 * The connection test call (SPEC §2.2): `Stage: CustomExtensionConnectionTest` and the catalog, in
 * the request trigger schema's shape (valid against Microsoft's sample), for every extension type.
 */
export function buildConnectionTestPayload(catalog: {
  id: string;
  displayName: string;
  description: string;
}): Record<string, unknown> {
  return {
    CustomExtensionStageInstanceId: randomUUID(),
    Stage: 'CustomExtensionConnectionTest',
    AccessPackageCatalog: {
      Id: catalog.id,
      DisplayName: catalog.displayName ?? '',
      Description: catalog.description ?? '',
    },
    // The legacy shape's name for the catalog, for legacy receivers.
    CatalogId: catalog.id,
  };
}
