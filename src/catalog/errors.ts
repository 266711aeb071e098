/** Errors of the local database, each with a stable `code` (DESIGN.md rule 3). */

export type CatalogErrorCode =
  /** The file holds tables named like sregistry's that lack its columns. */
  | 'incompatible_schema'
  /** A newer `sreg` migrated the database past what this one knows. */
  | 'schema_too_new'
  /** SQLite could not open or write the file (permissions, disk, corruption). */
  | 'db_failed';

export class CatalogError extends Error {
  override readonly name = 'CatalogError';
  constructor(
    readonly code: CatalogErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
