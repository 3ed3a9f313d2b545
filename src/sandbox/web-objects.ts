/**
 * Fast, sealed Request and Response objects for the hot path. A function gets a light Request that
 * answers url, method, headers and signal without building an undici Request, and makes the real
 * one only when something else is asked for. Its state sits in a private field (hidden-state.ts),
 * so nothing of Node's (the request's frame, the channel) is reachable from it by reflection. A
 * Response made from a string, bytes or nothing is light too: the serving path reads its parts
 * directly, with no body stream.
 */
import { isRequest, KylixRequest } from './light-request.js';
import { isResponse, KylixResponse } from './light-response.js';

export { lightRequest, type RequestSource } from './light-request.js';
export { flatHeaders, isResponse, responseParts, simpleResponseOf } from './light-response.js';

/**
 * Names and instanceof as on Workers: the classes are called Request and Response, and every request
 * or response (light, native, made by clone() or Response.redirect(), before or after the globals were
 * replaced) is an instance of the global class. Subclasses keep ordinary instanceof.
 */
function workersClass(cls: object, name: string, isOne: (value: unknown) => boolean): void {
  const ordinary = Function.prototype[Symbol.hasInstance];
  Object.defineProperty(cls, 'name', { value: name, configurable: true });
  Object.defineProperty(cls, Symbol.hasInstance, {
    value: function (this: unknown, value: unknown): boolean {
      return this === cls ? isOne(value) : ordinary.call(this, value);
    },
    configurable: true,
  });
}
workersClass(KylixRequest, 'Request', isRequest);
workersClass(KylixResponse, 'Response', isResponse);

/** Installs the Request and Response classes above as globals. */
export function installWebObjects(): void {
  Object.defineProperty(globalThis, 'Request', { value: KylixRequest, writable: true, configurable: true });
  Object.defineProperty(globalThis, 'Response', { value: KylixResponse, writable: true, configurable: true });
}
