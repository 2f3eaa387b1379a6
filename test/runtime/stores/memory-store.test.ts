import { MemoryStore } from '../../../src/runtime/stores/memory.js';
import { journalStoreSuite } from './store-suite.js';

journalStoreSuite('MemoryStore', async () => {
  // The memory is the instance: a "restart" opens the same one again.
  const store = new MemoryStore();
  return {
    open: () => store,
    dispose: () => store.close(),
  };
});
