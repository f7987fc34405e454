import { compose, loadConfigFile, type Logger, type Services, type UserConfig } from '@tricks/core';
import { standardBuiltins } from '@tricks/lab';

/**
 * The container's services for a command that does not train (eval, export, model list, bench,
 * augment-preview): the standard built-ins plus whatever the config file's plugins and modules bind, so
 * a dataset or model registered through DI is visible to every command.
 */
export async function cliServices(opts: { config?: string; logger?: Logger; user?: UserConfig } = {}): Promise<Services> {
  const user = opts.user ?? (await loadConfigFile(opts.config))?.config ?? {};
  const { services } = await compose(user, { builtins: standardBuiltins(), logger: opts.logger });
  return services();
}
