/**
 * Kylix's one error type. Every failure a user can see has a stable `code`, a sentence that says what
 * to do, and an HTTP status decided here and nowhere else.
 */

/** Stable error codes, with the HTTP status each maps to and whether it is the user's doing. */
export const ERROR_CODES = {
  /** A manifest or API object failed validation; `causes` lists every field. */
  ERR_MANIFEST_INVALID: { status: 422, user: true, reason: 'Invalid' },
  /** The request itself is malformed (bad JSON, bad query parameter). */
  ERR_BAD_REQUEST: { status: 400, user: true, reason: 'BadRequest' },
  /** The named object does not exist. */
  ERR_NOT_FOUND: { status: 404, user: true, reason: 'NotFound' },
  /** A create named an object that already exists. */
  ERR_ALREADY_EXISTS: { status: 409, user: true, reason: 'AlreadyExists' },
  /** A write carried a stale metadata.resourceVersion. */
  ERR_CONFLICT: { status: 409, user: true, reason: 'Conflict' },
  /** Two functions claim the same host, path and method. */
  ERR_ROUTE_CONFLICT: { status: 409, user: true, reason: 'Conflict' },
  /** The API needs a bearer token and none (or a wrong one) was given. */
  ERR_UNAUTHORIZED: { status: 401, user: true, reason: 'Unauthorized' },
  /** The token is valid, but its role does not allow this request (another namespace, a write by a viewer). */
  ERR_FORBIDDEN: { status: 403, user: true, reason: 'Forbidden' },
  /** A watch asked for a resourceVersion older than the server still remembers. */
  ERR_GONE: { status: 410, user: true, reason: 'Expired' },
  /** esbuild could not bundle the function's source. */
  ERR_BUILD_FAILED: { status: 422, user: true, reason: 'Invalid' },
  /** A manifest file or folder could not be read. */
  ERR_MANIFEST_UNREADABLE: { status: 400, user: true, reason: 'BadRequest' },
  /** No function's route matches the request's host, path and method. */
  ERR_NO_ROUTE: { status: 404, user: true, reason: 'NotFound' },
  /** The route's method list does not include the request's method. */
  ERR_METHOD_NOT_ALLOWED: { status: 405, user: true, reason: 'MethodNotAllowed' },
  /** The request body is larger than the function's limit, or the control API's (3 MiB). */
  ERR_BODY_TOO_LARGE: { status: 413, user: true, reason: 'RequestEntityTooLarge' },
  /** The request URL is longer than the gateway accepts. */
  ERR_URL_TOO_LONG: { status: 414, user: true, reason: 'RequestURITooLong' },
  /** The request headers are larger than the gateway parses. */
  ERR_HEADERS_TOO_LARGE: { status: 431, user: true, reason: 'RequestHeaderFieldsTooLarge' },
  /** A function called a binding it does not have, an operation its kind lacks, or a missing resource. */
  ERR_BINDING_DENIED: { status: 403, user: true, reason: 'Forbidden' },
  /** A binding was called with arguments of the wrong shape or out of range (key too long, bad cursor…). */
  ERR_BINDING_BAD_ARGUMENTS: { status: 400, user: true, reason: 'BadRequest' },
  /** A binding call's value, metadata or object exceeds that binding's limits. */
  ERR_BINDING_TOO_LARGE: { status: 413, user: true, reason: 'RequestEntityTooLarge' },
  /** A bucket read asked for a range that starts at or past the object's end. */
  ERR_RANGE_NOT_SATISFIABLE: { status: 416, user: true, reason: 'RequestedRangeNotSatisfiable' },
  /** A binding's backend (Redis, S3, PostgreSQL, NATS, …) could not be reached or failed; the message names it. */
  ERR_BACKEND_UNAVAILABLE: { status: 503, user: false, reason: 'ServiceUnavailable' },
  /** The installation's config (a provider's settings) is invalid; `causes` lists every field. */
  ERR_CONFIG_INVALID: { status: 500, user: false, reason: 'InternalError' },
  /** A stored secret value cannot be opened: its key is not in this node's keyring, or it was altered. */
  ERR_SECRET_UNREADABLE: { status: 500, user: false, reason: 'InternalError' },
  /** The function threw (or rejected) instead of returning a Response. */
  ERR_FUNCTION_THREW: { status: 502, user: true, reason: 'BadGateway' },
  /** The function has no revision that started: its module threw while loading, or a binding is missing. */
  ERR_FUNCTION_NOT_STARTED: { status: 503, user: true, reason: 'ServiceUnavailable' },
  /** The function's instance died while serving the request. */
  ERR_FUNCTION_CRASHED: { status: 502, user: true, reason: 'BadGateway' },
  /** The function did not answer within its wall-time limit. */
  ERR_TIMEOUT: { status: 504, user: true, reason: 'Timeout' },
  /** The client did not finish sending its request within the function's wall-time limit. */
  ERR_REQUEST_TIMEOUT: { status: 408, user: true, reason: 'Timeout' },
  /** A request used more CPU time than spec.limits.cpuMs; its instance was stopped. */
  ERR_CPU_LIMIT: { status: 503, user: true, reason: 'ServiceUnavailable' },
  /** The instance used more memory than spec.limits.memoryMiB; it was stopped. */
  ERR_MEMORY_LIMIT: { status: 503, user: true, reason: 'ServiceUnavailable' },
  /** The function is at its concurrency limit (adaptive, at most spec.limits.maxConcurrency) and its queue is full; retry after Retry-After. */
  ERR_TOO_MANY_REQUESTS: { status: 429, user: true, reason: 'TooManyRequests' },
  /** A namespace's functions hold its share of the node's requests at once; retry after Retry-After. */
  ERR_NAMESPACE_LIMIT: { status: 429, user: true, reason: 'TooManyRequests' },
  /** A namespace holds as much of a store as it may (its quota); delete some, or raise the quota. */
  ERR_QUOTA_EXCEEDED: { status: 507, user: true, reason: 'InsufficientStorage' },
  /** The node serves as many requests as it can; retry after Retry-After. */
  ERR_OVERLOADED: { status: 503, user: false, reason: 'ServiceUnavailable' },
  /** An uploaded function bundle is larger than the installation accepts. */
  ERR_BUNDLE_TOO_LARGE: { status: 413, user: true, reason: 'RequestEntityTooLarge' },
  /** The function has no ready revision yet (still deploying, or its revision failed). */
  ERR_NOT_READY: { status: 503, user: false, reason: 'ServiceUnavailable' },
  /** The platform could not reach the API server (CLI side). */
  ERR_API_UNREACHABLE: { status: 503, user: false, reason: 'ServiceUnavailable' },
  /** A SQL statement failed in PostgreSQL; the message and SQLSTATE are PostgreSQL's own. */
  ERR_SQL: { status: 400, user: true, reason: 'BadRequest' },
  /** An interactive transaction id is unknown: it was committed, rolled back or timed out. */
  ERR_TRANSACTION_CLOSED: { status: 409, user: true, reason: 'Conflict' },
  /** A queue message is larger than the backend accepts. */
  ERR_MESSAGE_TOO_LARGE: { status: 413, user: true, reason: 'RequestEntityTooLarge' },
  /** Anything we did not foresee: a bug in Kylix, reported with the request id. */
  ERR_INTERNAL: { status: 500, user: false, reason: 'InternalError' },
} as const;

/** One of the codes above. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** One invalid field of an object, as Kubernetes reports it in `details.causes`. */
export interface ErrorCause {
  field: string;
  message: string;
}

/** The error every part of Kylix throws for a failure it understands. */
export class KylixError extends Error {
  readonly code: ErrorCode;
  readonly causes: ErrorCause[];

  constructor(code: ErrorCode, message: string, causes: ErrorCause[] = []) {
    super(message);
    this.name = 'KylixError';
    this.code = code;
    this.causes = causes;
  }

  /** The HTTP status this error maps to. */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  /** True when the user can fix it (a bad manifest, a missing object); false for platform faults. */
  get isUserError(): boolean {
    return ERROR_CODES[this.code].user;
  }

  /** The Kubernetes `reason` string for Status objects. */
  get reason(): string {
    return ERROR_CODES[this.code].reason;
  }
}

/** Wraps anything thrown into a KylixError, keeping the original as `cause` for the logs only. */
export function toKylixError(err: unknown): KylixError {
  if (err instanceof KylixError) return err;
  const wrapped = new KylixError(
    'ERR_INTERNAL',
    'Kylix hit an unexpected error. This is a bug; the platform log has the details.',
  );
  wrapped.cause = err;
  return wrapped;
}

/** The most characters of request input an error message repeats. */
const QUOTE_MAX = 64;

/**
 * Quotes a piece of request input (a name from a URL, a kind from a body) for an error message:
 * JSON-escaped, so control characters stay visible, and cut short, so a huge value is never echoed.
 */
export function quoteInput(value: unknown, max = QUOTE_MAX): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  if (text.length <= max) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, max))}… (${text.length} characters)`;
}

/** A message listing every cause on its own line, for terminals. */
export function describeError(err: KylixError): string {
  const lines = [`${err.code}: ${err.message}`];
  for (const c of err.causes) lines.push(`  - ${c.field}: ${c.message}`);
  return lines.join('\n');
}
