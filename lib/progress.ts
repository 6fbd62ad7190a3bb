/**
 * A one-line progress bar for long CLI work. On a terminal it redraws in place (at most 10 times a
 * second); otherwise it prints a line every 10 %, so CI logs stay short.
 */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): {
  update(done: number, total: number): void;
  finish(summary: string): void;
} {
  const started = Date.now();
  let lastDraw = 0;
  let lastDecile = -1;
  const render = (done: number, total: number) => {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const width = 30;
    const filled = Math.round(frac * width);
    const secs = (Date.now() - started) / 1000;
    const rate = secs > 0 ? Math.round(done / secs) : 0;
    return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${done}/${total} rows, ${rate}/s`;
  };
  return {
    update(done, total) {
      const now = Date.now();
      if (stream.isTTY) {
        if (now - lastDraw < 100 && done < total) return;
        lastDraw = now;
        stream.write(`\r${render(done, total)}`);
      } else {
        const decile = total > 0 ? Math.floor((done / total) * 10) : 10;
        if (decile === lastDecile) return;
        lastDecile = decile;
        stream.write(`${render(done, total)}\n`);
      }
    },
    finish(summary) {
      stream.write(`${stream.isTTY ? '\n' : ''}${label}: ${summary}\n`);
    },
  };
}
