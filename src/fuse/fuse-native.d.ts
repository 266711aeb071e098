/** The part of fuse-native 2.2 that src/fuse uses (the package ships no types). */
declare module 'fuse-native' {
  type Callback = (...args: unknown[]) => void;
  class Fuse {
    constructor(mountpoint: string, ops: Record<string, (...args: never[]) => void>, opts?: Record<string, unknown>);
    readonly mnt: string;
    mount(cb: (err?: Error | null) => void): void;
    unmount(cb: (err?: Error | null) => void): void;
    protected _fuseOptions(): string;
    static unmount(mountpoint: string, cb: (err?: Error | null) => void): void;
  }
  export = Fuse;
  export type { Callback };
}
