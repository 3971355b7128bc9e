// Synthesises a CapstanStack in a Stage per account and Region, as a CDK Pipelines app adds them
// (docs/deploy.md, many accounts and Regions). Run by tests/infra/test_cdk_stages.py:
//   ts-node test/stages.ts OUTDIR '[{"account": ..., "region": ..., "policies": ..., "parameters": {...}}]'
import { App, Stage } from 'aws-cdk-lib';
import { CapstanStack } from '../lib/capstan-stack';

interface Target {
  account: string;
  region: string;
  policies: string;
  parameters: Record<string, string>;
}

const [outdir, targets] = process.argv.slice(2);
const app = new App({ outdir, analyticsReporting: false });
for (const target of JSON.parse(targets) as Target[]) {
  const stage = new Stage(app, `Capstan-${target.account}-${target.region}`, {
    env: { account: target.account, region: target.region },
  });
  new CapstanStack(stage, 'Capstan', { policies: target.policies, parameterDefaults: target.parameters });
}
app.synth();
