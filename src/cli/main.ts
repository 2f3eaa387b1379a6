#!/usr/bin/env node
/** The `agentcell` command. */
import { Command } from 'commander';
import { mockLlmCommand } from './mock-llm.js';

const program = new Command('agentcell').description(
  'An isolated clone of your AI agent for every channel, tenant or session',
);
mockLlmCommand(program);
await program.parseAsync();
