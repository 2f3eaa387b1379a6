/**
 * `agentcell loadtest`: drives N sessions × M turns against the embedded supervisor (with the
 * bundled mock LLM) or a running gateway, and reports throughput, latency, errors, workers,
 * memory and CPU. Exits 0 on a pass, 1 on lost turns or crossed `--fail-on` thresholds, 2 on
 * bad options. The same command, with other defaults, is `agentcell demo`.
 */
import { type Command, Command as CommanderCommand, CommanderError } from 'commander';
import { isAgentcellError } from '../../errors.js';
import { addLoadtestOptions, optionsFromCommand, type ParsedCommandOptions } from './flags.js';
import { LOADTEST_DEFAULTS, type LoadtestDefaults, type LoadtestOptions } from './options.js';
import { type LoadtestIo, processIo, runLoadtest } from './run.js';

/** How a load test command is set up: its name, defaults, and what happens at its end. */
export interface LoadtestCommandSetup {
  readonly name: string;
  readonly description: string;
  /** Defaults of the flags; `title` names the run. */
  readonly defaults: LoadtestDefaults;
  readonly io: LoadtestIo;
  /** A note printed to stderr before the run (the demo explains its choices). */
  readonly preface?: (options: LoadtestOptions) => string;
  /** Called with the exit code when the command has finished (0, 1, or 2 for bad options). */
  readonly onExit: (code: number) => void | Promise<void>;
  /** Called on commander's own errors (unknown option, bad value) and on `--help`. */
  readonly onCommanderExit: (error: CommanderError) => void;
}

/** Builds a load test command (`loadtest`, or `demo` with other defaults). */
export function buildLoadtestCommand(setup: LoadtestCommandSetup): Command {
  const { io } = setup;
  const command = new CommanderCommand(setup.name).description(setup.description);
  addLoadtestOptions(command, setup.defaults);
  command
    .exitOverride(setup.onCommanderExit)
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .action(async (parsed: ParsedCommandOptions, self: Command) => {
      let options: LoadtestOptions;
      try {
        options = optionsFromCommand(parsed, self, setup.defaults.title);
      } catch (error) {
        if (!isAgentcellError(error, 'AGENTCELL_OPTIONS_INVALID')) throw error;
        io.stderr.write(`error: ${error.message}\n(see agentcell ${setup.name} --help)\n`);
        await setup.onExit(2);
        return;
      }
      if (setup.preface) io.stderr.write(setup.preface(options));
      let code: number;
      try {
        code = (await runLoadtest(options, io)).exitCode;
      } catch (error) {
        io.stderr.write(
          `error: ${setup.name} failed: ${error instanceof Error ? error.message : String(error)}\n`,
        );
        code = 1;
      }
      await setup.onExit(code);
    });
  return command;
}

/** Flushes stdout and stderr, then exits: nothing left open (sockets, threads) keeps it alive. */
export async function exitProcess(code: number): Promise<never> {
  await Promise.all(
    [process.stdout, process.stderr].map(
      (stream) => new Promise<void>((done) => stream.write('', () => done())),
    ),
  );
  process.exit(code);
}

/** For the real binary: commander's usage errors exit 2, `--help` exits 0. */
export function exitOnCommanderError(error: CommanderError): never {
  process.exit(error.exitCode === 0 ? 0 : 2);
}

/** Registers `agentcell loadtest` on the program. */
export function loadtestCommand(program: Command): void {
  program.addCommand(
    buildLoadtestCommand({
      name: 'loadtest',
      description:
        'drive many sessions × turns against the embedded supervisor (mock LLM) or a gateway (--url), and report throughput, latency, errors, workers, memory and CPU',
      defaults: LOADTEST_DEFAULTS,
      io: processIo(),
      onExit: exitProcess,
      onCommanderExit: exitOnCommanderError,
    }),
  );
}

/**
 * Runs a load test command in-process from its arguments (without the command name) and
 * resolves with the exit code the binary would have: 0, 1 (lost turns, `--fail-on`) or 2 (bad
 * options). For tests and embedding.
 *
 * @example
 * const code = await runLoadtestCli(['--sessions', '20', '--turns', '2', '--json'], io);
 */
export async function runLoadtestCli(
  argv: readonly string[],
  io: LoadtestIo,
  setup: Pick<LoadtestCommandSetup, 'name' | 'description' | 'defaults' | 'preface'> = {
    name: 'loadtest',
    description: 'load test',
    defaults: LOADTEST_DEFAULTS,
  },
): Promise<number> {
  let code = 0;
  const command = buildLoadtestCommand({
    ...setup,
    io,
    onExit: (exitCode) => {
      code = exitCode;
    },
    onCommanderExit: (error) => {
      throw error;
    },
  });
  try {
    await command.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
  return code;
}
