export declare const SLEEPERS: readonly string[];
export declare function initramfs(work: string, name: string, trigger: string, opts?: { fwcfg?: string; extra?: readonly string[] }): string;
