/** How stores tell of records they had to skip as unreadable. */
import type { StoreCorruptError } from '../../errors.js';
import { errorFields, log } from '../../log.js';

export type CorruptionObserver = (error: StoreCorruptError) => void;

/** The default observer: one warning line per skipped record. */
export function logCorruption(error: StoreCorruptError): void {
  log('store').warn(
    { ...errorFields(error), ...error.details },
    'a stored journal record is unreadable and was skipped',
  );
}

/** Tells `observer` of a skipped record; an observer that throws leaves the rest readable. */
export function reportCorruption(observer: CorruptionObserver, error: StoreCorruptError): void {
  try {
    observer(error);
  } catch (thrown) {
    log('store').warn(errorFields(thrown), 'the onCorrupt observer threw');
  }
}
