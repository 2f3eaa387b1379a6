#!/usr/bin/env node
/** The `agentcell` command. */
import { Command } from 'commander';
import { demoCommand } from './demo.js';
import { loadtestCommand } from './loadtest/command.js';
import { mockLlmCommand } from './mock-llm.js';

const program = new Command('agentcell').description(
  'An isolated clone of your AI agent for every channel, tenant or session',
);
mockLlmCommand(program);
loadtestCommand(program);
demoCommand(program);
(await import('./serve.js')).serveCommand(program);
await program.parseAsync();
