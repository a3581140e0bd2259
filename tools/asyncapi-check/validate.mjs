// Validate an AsyncAPI document with the official parser and print every diagnostic.
//
// Usage: node "$(tools/asyncapi-check/install.sh)/validate.mjs" [--json] asyncapi.json
// Exit status: 0 when no diagnostic is an error, 1 when at least one is, 2 on bad usage or
// an unreadable file. --json prints the diagnostics as one JSON array (for tests).
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

import { Parser } from '@asyncapi/parser';

// Spectral's DiagnosticSeverity, which the parser reports: 0 is an error.
const SEVERITY = ['error', 'warning', 'info', 'hint'];

function usage(message) {
  console.error(`validate.mjs: ${message}\nusage: node validate.mjs [--json] asyncapi.json`);
  process.exit(2);
}

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const files = args.filter((arg) => arg !== '--json');
if (files.length !== 1) usage('expected exactly one AsyncAPI file');

const source = resolve(files[0]);
let text;
try {
  text = await readFile(source, 'utf8');
} catch (error) {
  usage(`cannot read ${source}: ${error.message}`);
}

// parse() runs the same rules as validate() and also builds the document model, so
// problems that only appear while resolving references are reported too.
const { diagnostics } = await new Parser().parse(text, { source });

const report = diagnostics.map((d) => ({
  severity: SEVERITY[d.severity] ?? String(d.severity),
  code: String(d.code),
  path: d.path.map(String),
  message: d.message,
  line: d.range ? d.range.start.line + 1 : null,
}));

if (asJson) {
  console.log(JSON.stringify(report, null, 2));
} else {
  for (const d of report) {
    const where = d.path.length ? d.path.join('.') : '(document)';
    console.log(`${d.severity}\t${where}\t${d.message} [${d.code}, line ${d.line ?? '?'}]`);
  }
  const errors = report.filter((d) => d.severity === 'error').length;
  console.log(`${source}: ${errors} error(s), ${report.length - errors} other diagnostic(s)`);
}
process.exit(report.some((d) => d.severity === 'error') ? 1 : 0);
