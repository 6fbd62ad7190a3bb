/**
 * Prints at most `maxPerSecond` lines a second and summarises the rest ("… and N more"), so a
 * live tail stays readable during a flood of changes.
 */
export interface RateLimitedWriter {
  write(line: string): void;
  close(): void;
}

export function rateLimitedWriter(out: (line: string) => void, maxPerSecond = 20): RateLimitedWriter {
  let printed = 0;
  let suppressed = 0;
  const timer = setInterval(() => {
    if (suppressed > 0) out(`  … and ${suppressed} more in that second`);
    printed = 0;
    suppressed = 0;
  }, 1000);
  timer.unref();
  return {
    write(line) {
      if (printed < maxPerSecond) {
        out(line);
        printed++;
      } else suppressed++;
    },
    close() {
      clearInterval(timer);
    },
  };
}
