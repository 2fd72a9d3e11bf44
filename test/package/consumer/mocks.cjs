// The consumer's Pulumi mocks (a fake engine: there is no Pulumi CLI here). Records every
// resource registration; `report` waits for the RPC queue to drain, as the engine does at the end
// of a program, then prints the registrations and the given outputs as JSON.
const pulumi = require("@pulumi/pulumi");

const registered = [];
pulumi.runtime.setMocks(
  {
    newResource: (args) => {
      registered.push({
        type: args.type,
        name: args.name,
        provider: args.provider ?? null,
        inputs: args.inputs,
      });
      return { id: `${args.name}-id`, state: args.inputs };
    },
    call: (args) => args.inputs,
  },
  "consumer",
  "test",
  false,
);

async function report(outputs) {
  const values = await new Promise((resolve) => pulumi.all(outputs).apply(resolve));
  await pulumi.runtime.disconnect();
  process.stdout.write(JSON.stringify({ outputs: values, registered }));
}

module.exports = { report };
