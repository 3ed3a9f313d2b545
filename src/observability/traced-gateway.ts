/**
 * The gateway with a trace span around every request it serves (requests routed by host and path, and
 * `kylix invoke`'s calls through the API). A subclass rather than a hook inside Gateway.serve:
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

  /** Gateway.serve inside the request's span, with the trace headers rewritten for the function. */
  protected override serve(
    req: IncomingMessage,
    res: ServerResponse,
    functionKey: string,
    path: string,
    requestId: string,
    tag: string | undefined,
    done?: () => void,
  ): void {
    this.tracing.start(requestId, functionKey, req.headers, req.rawHeaders, req.method ?? 'GET', path);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.tracing.end(requestId, functionKey, res.statusCode, platformErrorCode(res));
    };
    try {
      super.serve(req, res, functionKey, path, requestId, tag, () => {
        end();
        done?.();
      });
    } catch (err) {
      end();
      throw err;
    }
  }
}
