/**
 * The gateway with a trace span around every dispatch (requests routed by host and path, and
 * `kylix invoke`'s calls through the API). A subclass rather than a hook inside Gateway.dispatch:
 * with tracing off the node builds the plain Gateway and pays nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { platformErrorCode } from '../gateway/errors.js';
import { Gateway, type Invocation, type RefusalHook } from '../gateway/gateway.js';
import type { Runtime } from '../runtime/runtime.js';
import type { RequestTracing } from './tracing.js';

/** See the file comment. */
export class TracedGateway extends Gateway {
  private readonly tracing: RequestTracing;

  constructor(
    tracing: RequestTracing,
    runtime: Runtime,
    onInvocation: (i: Invocation) => void = () => {},
    onRefused?: RefusalHook,
  ) {
    super(
      runtime,
      (i) => {
        tracing.finished(i);
        onInvocation(i);
      },
      onRefused,
    );
    this.tracing = tracing;
  }

  /** Gateway.dispatch inside the request's span, with the trace headers rewritten for the function. */
  override async dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    functionKey: string,
    path: string,
    requestId = this.nextRequestId(),
    tag?: string,
  ): Promise<void> {
    this.tracing.start(requestId, functionKey, req.headers, req.rawHeaders, req.method ?? 'GET', path);
    try {
      await super.dispatch(req, res, functionKey, path, requestId, tag);
    } finally {
      this.tracing.end(requestId, functionKey, res.statusCode, platformErrorCode(res));
    }
  }
}
