// Helpers for the Node client scripts: options, JSON-lines output, and a last-resort timeout.
import { parseArgs } from 'node:util';

/** Parse `--name value` options; every option is a string. */
export function options(names) {
  const spec = Object.fromEntries(names.map((name) => [name, { type: 'string' }]));
  return parseArgs({ options: spec, strict: true }).values;
}

/** One JSON line on stdout: what the pytest side reads. */
export function report(record) {
  process.stdout.write(JSON.stringify(record) + '\n');
}

/** Run `main`, report an uncaught failure as a line, and never hang past `seconds`. */
export function run(main, seconds = 45) {
  const timer = setTimeout(() => {
    report({ step: 'fatal', exception: `script still running after ${seconds} s` });
    process.exit(3);
  }, seconds * 1000);
  timer.unref();
  main().then(
    () => {
      report({ step: 'end' });
      process.exit(0);
    },
    (error) => {
      report({ step: 'fatal', exception: String(error?.stack ?? error) });
      process.exit(1);
    },
  );
}
