/**
 * Module resolution hooks of an instance thread: only the instance's own code may import anything
 * (the function bundle, once). The bundle itself, and code it evaluates, may import nothing: no
 * node: built-ins, no data: URLs, no files. esbuild already bundles every dependency in, so a
 * well-formed function never needs an import at run time.
 *
 * On Node ≥ 22.15 the instance installs `refuseUntrusted` in its own thread (module.registerHooks);
 * on older runtimes this file is loaded as off-thread hooks (module.register), which costs every
 * worker an extra thread (~45 ms of CPU at boot).
 */

let trusted = '';

/** Throws unless the importer is the instance code (`trustedUrl`). */
export function refuseUntrusted(specifier: string, parentURL: string | undefined, trustedUrl: string): void {
  if (parentURL === undefined || parentURL === trustedUrl) return;
  const err = new Error(
    `Functions cannot import "${specifier}" at run time: a function is one self-contained bundle, and Node built-ins, files and data: URLs are not available to it.`,
  ) as Error & { code: string };
  err.code = 'ERR_KYLIX_IMPORT_DENIED';
  throw err;
}

/** Receives the URL of the instance code, the one importer that is allowed (off-thread hooks). */
export async function initialize(data: { trusted: string }): Promise<void> {
  trusted = data.trusted;
}

type Next = (specifier: string, context: { parentURL?: string }) => Promise<unknown>;

/** Refuses every import whose importer is not the instance code (off-thread hooks). */
export async function resolve(
  specifier: string,
  context: { parentURL?: string },
  next: Next,
): Promise<unknown> {
  refuseUntrusted(specifier, context.parentURL, trusted);
  return next(specifier, context);
}
