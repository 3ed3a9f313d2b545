/**
 * A light object's prototype (light-request.ts, light-response.ts) answers every method and getter
 * of the native class it stands in for by calling it on the native object behind it.
 */

/** Defines on `proto` each method and getter of `native` (but the constructor), called on `toNative(this)`. */
export function delegateTo(proto: object, native: object, toNative: (self: object) => object): void {
  for (const key of Reflect.ownKeys(native)) {
    if (key === 'constructor') continue;
    const d = Reflect.getOwnPropertyDescriptor(native, key);
    if (!d) continue;
    if (typeof d.value === 'function') {
      const method = d.value as (...args: unknown[]) => unknown;
      Object.defineProperty(proto, key, {
        value(this: object, ...args: unknown[]) {
          return method.apply(toNative(this), args);
        },
        writable: true,
        configurable: true,
      });
    } else if (d.get) {
      const get = d.get;
      Object.defineProperty(proto, key, {
        get(this: object) {
          return get.call(toNative(this));
        },
        configurable: true,
      });
    }
  }
}
