/**
 * Turns a callback-style producer of events into an async iterable: events are buffered until
 * the consumer pulls them, and the producer's failure is thrown from the iterator.
 */
export async function* streamEvents<E>(
  produce: (onEvent: (event: E) => void) => Promise<unknown>,
): AsyncGenerator<E> {
  const buffered: E[] = [];
  let wake: (() => void) | undefined;
  let settled = false;
  let failure: { error: unknown } | undefined;
  const onEvent = (event: E) => {
    buffered.push(event);
    wake?.();
  };
  produce(onEvent).then(
    () => {
      settled = true;
      wake?.();
    },
    (error: unknown) => {
      failure = { error };
      settled = true;
      wake?.();
    },
  );
  while (true) {
    if (buffered.length > 0) {
      yield buffered.shift() as E;
      continue;
    }
    if (settled) break;
    await new Promise<void>((resolve) => {
      wake = resolve;
    });
    wake = undefined;
  }
  if (failure) throw failure.error;
}
