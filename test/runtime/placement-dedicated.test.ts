/** The shared session suite with a worker thread of its own per session. */
import { afterAll, beforeAll } from 'vitest';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { PLACEMENT_RULES, placementSuite } from './placement-suite.js';

let mock: MockLlm;

beforeAll(async () => {
  mock = await startMockLlm({ rules: PLACEMENT_RULES });
});

afterAll(async () => {
  await mock.close();
});

placementSuite('dedicated', { supervisor: { placement: 'dedicated' }, mock: () => mock });
