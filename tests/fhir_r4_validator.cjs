// Validates FHIR resources against the R4 core structure definitions that FHIR.js (npm
// "fhir") ships: cardinality, types, unknown elements, required value-set bindings.
// One JSON resource per input line; one JSON answer per output line: {"errors": [...]}.
const readline = require("node:readline");
const { Fhir } = require("fhir");

const fhir = new Fhir();
const lines = readline.createInterface({ input: process.stdin, terminal: false });
lines.on("line", (line) => {
  let errors;
  try {
    const result = fhir.validate(JSON.parse(line), { errorOnUnexpected: true });
    errors = result.messages
      .filter((m) => m.severity === "error")
      .map((m) => `${m.location}: ${m.message}`);
  } catch (error) {
    errors = [`not validated: ${error.message}`];
  }
  process.stdout.write(JSON.stringify({ errors }) + "\n");
});
