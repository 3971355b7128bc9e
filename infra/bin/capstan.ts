#!/usr/bin/env node
// The capstan CDK app: one stack, the same as ../template.yaml, checked by cdk-nag's AwsSolutions rules
// (a finding fails the synth unless it is suppressed with its reason in lib/capstan-stack.ts).
//
// CAPSTAN_CDK_SKIP_BUNDLING=1 synthesises without running cargo-lambda (the functions' code is left
// unbuilt): CI uses it to check the stack, since scripts/check-template.sh already cross-builds the
// same binaries with `sam build`. A synth for deployment leaves it unset and bundles.
import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CapstanStack } from '../lib/capstan-stack';

const app = new App({ analyticsReporting: false });
new CapstanStack(app, 'Capstan', {
  skipBundling: process.env.CAPSTAN_CDK_SKIP_BUNDLING === '1',
  description: 'capstan: the evaluator and alarm-sync Lambdas and what they need (CDK edition of template.yaml)',
});
Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
