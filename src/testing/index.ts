/**
 * `agentcell/testing`: helpers for testing agents without a real model provider.
 *
 * @example
 * import { startMockLlm } from 'agentcell/testing';
 * const mock = await startMockLlm();
 */
export {
  type MockLatency,
  type MockLlm,
  type MockLlmEvents,
  type MockLlmOptions,
  type MockLlmRequest,
  type MockLlmRequestHeaders,
  startMockLlm,
} from './mock-llm.js';
export type {
  ChatCompletionMessage,
  ChatCompletionRequest,
  ChatCompletionTool,
  ChatCompletionWireToolCall,
  ChatContentPart,
  MockFault,
  MockFaultKind,
  MockRule,
  MockStep,
  MockToolCall,
} from './mock-llm-script.js';
export { MOCK_MCP_SERVER } from './mock-mcp-server.js';
export { SimulatedClock } from './simulated-clock.js';
