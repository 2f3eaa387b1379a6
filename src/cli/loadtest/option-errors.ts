/** How the command line spells an option, and the error that names bad options by their flags. */
import { OptionsInvalidError } from '../../errors.js';

/**
 * An `AGENTCELL_OPTIONS_INVALID` whose message is exactly `message`: on a command line the
 * flags it names say all there is to fix, so the generic hint is left off.
 */
export function optionsError(message: string, paths?: readonly string[]): OptionsInvalidError {
  const error = new OptionsInvalidError(undefined, { details: paths && { paths } });
  error.message = message;
  return error;
}

/** `['thinkMs']` → `--think-ms`: how the command line spells an option. */
export function flagOf(path: readonly string[]): string {
  const [name = 'options', ...rest] = path;
  const flag = `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  return rest.length > 0 ? `${flag}[${rest.join('.')}]` : flag;
}
