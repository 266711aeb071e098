/** Errors of the registry commands that are the user's to fix, each with its exit code. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly exitCode: number = 2,
    readonly code: 'usage' | 'exists' | 'not_found' = 'usage',
  ) {
    super(message);
  }
}

export const exists = (message: string): UsageError => new UsageError(message, 6, 'exists');
export const notFound = (message: string): UsageError => new UsageError(message, 3, 'not_found');
