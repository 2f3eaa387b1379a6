/**
 * The OpenAI Agents SDK for JavaScript (`@openai/agents`) as a peer of bench/peers.bench.ts.
 * It needs Node 22 (its `openai` v7 dependency requires it), so it runs under the Node that
 * `npx -y -p node@22` installs:
 *
 *   npx -y -p node@22 node bench/_util/peer-openai-agents.mjs <n> <mock url> <turns> <timebox s>
 *
 * One template Agent; every session gets its own `agent.clone({})` and its own MemorySession
 * (the conversation history), and runs its turns with one shared Runner whose model provider is
 * the SDK's OpenAIProvider on Chat Completions (`useResponses: false`), pointed at the mock LLM
 * (`baseURL`, `apiKey`), tracing disabled. Turns are streamed, as agentcell's are.
 */
import { Agent, MemorySession, OpenAIProvider, Runner, setTracingDisabled } from '@openai/agents';
import { INSTRUCTIONS, MODEL, parseArgs, runPeer } from './peer-harness.mjs';

const { n, url, turns, timeboxMs } = parseArgs(process.argv.slice(2));

setTracingDisabled(true);
const provider = new OpenAIProvider({ baseURL: url, apiKey: 'k', useResponses: false });
const runner = new Runner({ modelProvider: provider, tracingDisabled: true });
const template = new Agent({ name: 'bench', instructions: INSTRUCTIONS, model: MODEL });

await runPeer(
  {
    name: 'openai-agents',
    open() {
      const agent = template.clone({});
      const session = new MemorySession();
      return {
        async send(message) {
          const result = await runner.run(agent, message, { stream: true, session });
          await result.completed;
          if (result.error) throw result.error;
          return result.finalOutput;
        },
      };
    },
    details: () => ({ sdk: '@openai/agents', api: 'chat_completions' }),
    close: () => provider.close(),
  },
  { n, turns, timeboxMs },
);
