/**
 * A problem the caller can fix. The message is one line naming the problem and the fix, worded
 * like the Python runtime's (ganzoo_export.errors) so both runtimes read alike.
 */
export class GanzooError extends Error {
  constructor(message) {
    super(message);
    this.name = 'GanzooError';
  }
}
