/** Typed rows of the sregistry-compatible tables. */

/**
 * The parts of an image name the catalog needs. `registry/`'s `ImageName` fits it; declared here
 * so that the catalog does not depend on the layer above it.
 */
export interface ImageRef {
  collection: string;
  name: string;
  tag: string;
  version?: string;
}

/** One `container` row with its collection's name. */
export interface ContainerRecord {
  id: number;
  collectionId: number;
  /** `collection.name`. */
  collection: string;
  name: string;
  tag: string;
  /** Local file path; null for a remote-only record. */
  image: string | null;
  url: string | null;
  /** `collection/name:tag` as stored (rows the Python client wrote may hold more, or null). */
  uri: string | null;
  client: string;
  /** The Dropbox content_hash for `sreg`; a SHA-256 of the file for the Python client; '' or null when unknown. */
  version: string | null;
  /** As stored: `YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC (SQLite CURRENT_TIMESTAMP / SQLAlchemy DateTime). */
  createdAt: string | null;
  /** The `metrics` JSON, parsed; the raw text when it is not JSON. */
  metrics: unknown;
}

export interface CollectionRecord {
  id: number;
  name: string;
  token: string | null;
  createdAt: string | null;
}

export interface UpsertContainer {
  n: ImageRef;
  /** Local path; null keeps the path a record already has (as the Python client does). */
  image: string | null;
  url: string;
  /** Stored as JSON; on update, merged over the old metrics key by key (Python's dict.update). */
  metrics: object;
  /** Overrides `n.version`. */
  version?: string;
  client?: string;
}
