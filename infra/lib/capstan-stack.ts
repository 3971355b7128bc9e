// The capstan stack in CDK: the same resources, parameters and IAM as ../../template.yaml (SAM).
// tests/infra/test_drift.py compares the two synthesised templates (resource types, IAM actions), so
// a change to one must be made to the other. Why each permission exists: docs/security.md.
import * as path from 'path';
import {
  Aws,
  CfnOutput,
  CfnParameter,
  CustomResource,
  Duration,
  RemovalPolicy,
  Stack,
  StackProps,
} from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cxapi from 'aws-cdk-lib/cx-api';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { RustFunction } from 'cargo-lambda-cdk';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';

/** The workspace manifest: cargo-lambda builds each function's binary from the workspace root. */
const WORKSPACE_MANIFEST = path.join(__dirname, '..', '..', 'Cargo.toml');

/** Tick input: an EventBridge "Scheduled Event", the shape functions/evaluator/src/event.rs reads. */
const TICK_INPUT =
  '{"version": "0", "id": "<aws.scheduler.execution-id>", "detail-type": "Scheduled Event", "source": "aws.scheduler", "time": "<aws.scheduler.scheduled-time>", "resources": ["<aws.scheduler.schedule-arn>"], "detail": {}}';

/** The AWS/Lambda metrics capstan's health alarms watch. */
type HealthMetric = 'Errors' | 'Throttles' | 'Duration';

/** The daily alarm-sync payload agreed with functions/alarm-sync. */
const SYNC_ALARMS_INPUT = '{"capstan": "sync-alarms"}';

/** Properties of the capstan stack. */
export interface CapstanStackProps extends StackProps {
  /**
   * Leave the functions' code unbuilt (cargo-lambda does not run), for checking the stack only.
   * By default, false: the functions are built and bundled.
   */
  readonly skipBundling?: boolean;

  /**
   * The directory of the policy set built into both functions (`CAPSTAN_POLICIES` of
   * crates/lambda/build.rs), e.g. one per account and Region in a pipeline. By default, the
   * repository's policies/.
   */
  readonly policies?: string;

  /**
   * Defaults of the stack's parameters, by name (e.g. `{ DryRun: 'true' }`). CDK Pipelines deploys a
   * stack without parameter values, so a stage's settings are its parameters' defaults.
   */
  readonly parameterDefaults?: Record<string, string>;
}

/** The capstan stack: evaluator, alarm-sync, state table, topics, dead-letter queue, alarms, dashboard. */
export class CapstanStack extends Stack {
  constructor(scope: Construct, id: string, props: CapstanStackProps = {}) {
    super(scope, id, props);
    if (props.skipBundling) {
      // The stack's own context wins over the CLI's, which asks every stack to bundle on synth.
      this.node.setContext(cxapi.BUNDLING_STACKS, []);
    }

    const alarmPrefix = new CfnParameter(this, 'AlarmPrefix', {
      type: 'String',
      default: 'capstan',
      allowedPattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$',
      description:
        'alarm-sync names its alarms <prefix>/<stack name>/...; only those wake this evaluator and only those alarm-sync touches.',
    });
    const dryRun = new CfnParameter(this, 'DryRun', {
      type: 'String',
      default: 'false',
      allowedValues: ['true', 'false'],
      description: 'When "true", the evaluator decides and logs but never scales anything.',
    });
    const paused = new CfnParameter(this, 'Paused', {
      type: 'String',
      default: 'false',
      allowedValues: ['true', 'false'],
      description: 'Global pause switch: every policy is evaluated and explained, nothing acts.',
    });
    const maxInFlight = new CfnParameter(this, 'MaxInFlight', {
      type: 'Number',
      default: 16,
      minValue: 1,
      maxValue: 100,
      description: 'The most capacity changes one evaluation pass makes at once (CAPSTAN_MAX_IN_FLIGHT).',
    });
    const maxResourcesPerInvocation = new CfnParameter(this, 'MaxResourcesPerInvocation', {
      type: 'Number',
      default: 500,
      minValue: 1,
      description:
        'The most policies one invocation evaluates in a tick (CAPSTAN_MAX_RESOURCES_PER_INVOCATION); a larger set is fanned out through the shard queue.',
    });
    const evaluatorConcurrency = new CfnParameter(this, 'EvaluatorConcurrency', {
      type: 'Number',
      default: 4,
      minValue: 1,
      maxValue: 1000,
      description: "The evaluator's reserved concurrency: how many invocations run at once, shards of a fanned-out tick and alarms alike; each keeps to its share of AWS's API rate limits (CAPSTAN_CONCURRENCY). See docs/deploy.md (sizing the shard size and the concurrency, rate limits).",
    });
    const tickRate = new CfnParameter(this, 'TickRate', {
      type: 'String',
      default: 'rate(1 minute)',
      allowedPattern: '^(rate|cron)\\(.+\\)$',
      description: 'How often the evaluator wakes without an alarm (an EventBridge Scheduler expression).',
    });
    const policySetHash = new CfnParameter(this, 'PolicySetHash', {
      type: 'String',
      default: 'unset',
      description: 'Changes whenever policies/ changes (e.g. `git rev-parse HEAD:policies`): re-runs alarm-sync.',
    });
    const logLevel = new CfnParameter(this, 'LogLevel', {
      type: 'String',
      default: 'INFO',
      allowedValues: ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'],
      description:
        "The functions' log level: their logging configuration's ApplicationLogLevel, which Lambda passes to them as AWS_LAMBDA_LOG_LEVEL.",
    });
    const logRetentionDays = new CfnParameter(this, 'LogRetentionDays', {
      type: 'Number',
      default: 30,
      allowedValues: ['1', '3', '5', '7', '14', '30', '60', '90', '120', '150', '180', '365', '400', '545', '731', '1096', '1827', '2192', '2557', '2922', '3288', '3653'],
      description: "How long the functions' CloudWatch Logs are kept.",
    });

    const account = Aws.ACCOUNT_ID;
    const region = Aws.REGION;
    const partition = Aws.PARTITION;
    const arn = (service: string, resource: string) => `arn:${partition}:${service}:${region}:${account}:${resource}`;

    // Cooldown and last-action state; retained on deletion (losing it would forget cooldowns).
    const stateTable = new dynamodb.CfnTable(this, 'StateTable', {
      billingMode: 'PAY_PER_REQUEST',
      attributeDefinitions: [
        { attributeName: 'pk', attributeType: 'S' },
        { attributeName: 'sk', attributeType: 'S' },
      ],
      keySchema: [
        { attributeName: 'pk', keyType: 'HASH' },
        { attributeName: 'sk', keyType: 'RANGE' },
      ],
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      sseSpecification: { sseEnabled: true },
      timeToLiveSpecification: { attributeName: 'expires_at', enabled: true },
    });
    stateTable.applyRemovalPolicy(RemovalPolicy.RETAIN);

    const decisionsTopic = new sns.CfnTopic(this, 'DecisionsTopic', {
      displayName: 'capstan decisions blocked or failed',
      kmsMasterKeyId: 'alias/aws/sns',
    });
    // CloudWatch alarms cannot publish to a topic under the AWS managed key alias/aws/sns.
    const alertsTopic = new sns.CfnTopic(this, 'AlertsTopic', { displayName: 'capstan health alarms' });
    new sns.CfnTopicPolicy(this, 'TopicsPolicy', {
      topics: [decisionsTopic.ref, alertsTopic.ref],
      policyDocument: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            sid: 'DenyInsecureTransport',
            effect: iam.Effect.DENY,
            principals: [new iam.AnyPrincipal()],
            actions: ['sns:Publish'],
            resources: [decisionsTopic.ref, alertsTopic.ref],
            conditions: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
          new iam.PolicyStatement({
            sid: 'CloudWatchAlarms',
            principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
            actions: ['sns:Publish'],
            resources: [alertsTopic.ref],
            conditions: { StringEquals: { 'aws:SourceAccount': account } },
          }),
        ],
      }),
    });

    // Failed asynchronous invocations of either function, and shards refused 5 times, kept 14 days.
    const deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      retentionPeriod: Duration.days(14),
      enforceSSL: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // The shards of a fanned-out tick (see template.yaml): visibility six times the evaluator's
    // timeout, 256 KiB messages, 5 receives before the dead-letter queue.
    const shardQueue = new sqs.Queue(this, 'ShardQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      visibilityTimeout: Duration.seconds(360),
      maxMessageSizeBytes: 262144,
      retentionPeriod: Duration.hours(1),
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: 5 },
      enforceSSL: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    const evaluatorLogGroup = this.logGroup('EvaluatorLogGroup', 'evaluator', logRetentionDays);
    const alarmSyncLogGroup = this.logGroup('AlarmSyncLogGroup', 'alarm-sync', logRetentionDays);

    // Only capstan's tags on the read replicas it creates.
    const replicaTags = {
      StringEquals: { 'aws:RequestTag/capstan:managed': 'true' },
      'ForAllValues:StringEquals': { 'aws:TagKeys': ['capstan:managed', 'capstan:policy'] },
    };
    const evaluatorRole = this.functionRole('EvaluatorFunctionRole', deadLetterQueue, [
      new iam.PolicyStatement({
        sid: 'ReadMetricsAndGroups',
        actions: ['cloudwatch:GetMetricData', 'autoscaling:DescribeAutoScalingGroups'],
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        sid: 'DescribeEcsServices',
        actions: ['ecs:DescribeServices'],
        resources: [arn('ecs', 'service/*')],
      }),
      new iam.PolicyStatement({
        sid: 'ScaleTaggedAutoScalingGroups',
        actions: ['autoscaling:SetDesiredCapacity'],
        resources: [arn('autoscaling', 'autoScalingGroup:*:autoScalingGroupName/*')],
        conditions: { StringEquals: { 'autoscaling:ResourceTag/capstan:managed': 'true' } },
      }),
      new iam.PolicyStatement({
        sid: 'ScaleTaggedEcsServices',
        actions: ['ecs:UpdateService'],
        resources: [arn('ecs', 'service/*')],
        conditions: { StringEquals: { 'aws:ResourceTag/capstan:managed': 'true' } },
      }),
      new iam.PolicyStatement({
        sid: 'StateTable',
        actions: [
          'dynamodb:GetItem',
          'dynamodb:BatchGetItem',
          'dynamodb:PutItem',
          'dynamodb:BatchWriteItem',
          'dynamodb:UpdateItem',
          'dynamodb:DeleteItem',
          'dynamodb:ConditionCheckItem',
        ],
        resources: [stateTable.attrArn],
      }),
      new iam.PolicyStatement({
        sid: 'PublishBlockedOrFailedDecisions',
        actions: ['sns:Publish'],
        resources: [decisionsTopic.ref],
      }),
      new iam.PolicyStatement({
        sid: 'SendShards',
        actions: ['sqs:SendMessage'],
        resources: [shardQueue.queueArn],
      }),
      new iam.PolicyStatement({
        sid: 'ReceiveShards',
        actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
        resources: [shardQueue.queueArn],
      }),
      new iam.PolicyStatement({
        sid: 'DescribeDatabases',
        actions: ['rds:DescribeDBInstances'],
        resources: [arn('rds', 'db:*')],
      }),
      new iam.PolicyStatement({
        sid: 'CreateTaggedReadReplicas',
        actions: ['rds:CreateDBInstanceReadReplica', 'rds:AddTagsToResource'],
        resources: [arn('rds', 'db:*')],
        conditions: replicaTags,
      }),
      new iam.PolicyStatement({
        sid: 'ReadReplicaGroups',
        actions: ['rds:CreateDBInstanceReadReplica'],
        resources: [arn('rds', 'og:*'), arn('rds', 'pg:*'), arn('rds', 'subgrp:*')],
        conditions: replicaTags,
      }),
      new iam.PolicyStatement({
        sid: 'DeleteCapstanReadReplicas',
        actions: ['rds:DeleteDBInstance'],
        resources: [arn('rds', 'db:*')],
        conditions: { StringEquals: { 'aws:ResourceTag/capstan:managed': 'true' } },
      }),
      new iam.PolicyStatement({
        sid: 'DescribeKafkaClusters',
        actions: ['kafka:DescribeClusterV2'],
        resources: [arn('kafka', 'cluster/*')],
      }),
      new iam.PolicyStatement({
        sid: 'DescribeKafkaClusterOperations',
        actions: ['kafka:DescribeClusterOperationV2'],
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        sid: 'ListKafkaTopics',
        actions: ['kafka:ListTopics', 'kafka-cluster:Connect'],
        resources: [arn('kafka', 'cluster/*')],
      }),
      new iam.PolicyStatement({
        sid: 'DescribeKafkaTopics',
        actions: ['kafka:DescribeTopic', 'kafka-cluster:DescribeTopic', 'kafka-cluster:DescribeTopicDynamicConfiguration'],
        resources: [arn('kafka', 'topic/*')],
      }),
      new iam.PolicyStatement({
        sid: 'GrowTaggedKafkaClusters',
        actions: ['kafka:UpdateBrokerCount'],
        resources: [arn('kafka', 'cluster/*')],
        conditions: { StringEquals: { 'aws:ResourceTag/capstan:managed': 'true' } },
      }),
      new iam.PolicyStatement({
        sid: 'GrowKafkaTopics',
        actions: ['kafka:UpdateTopic', 'kafka-cluster:AlterTopic', 'kafka-cluster:AlterTopicDynamicConfiguration'],
        resources: [arn('kafka', 'topic/*')],
      }),
    ]);
    NagSuppressions.addResourceSuppressions(evaluatorRole, [
      {
        id: 'AwsSolutions-IAM5',
        reason:
          'cloudwatch:GetMetricData, autoscaling:DescribeAutoScalingGroups and kafka:DescribeClusterOperationV2 support ' +
          'no resource-level permissions; ' +
          'the scalable resources are named by the policies, not known to the stack, so the other ARNs are wildcards ' +
          'within the account and region, and the writes are conditioned on tags where AWS supports it (docs/security.md).',
        appliesTo: [
          'Resource::*',
          { regex: '/^Resource::arn:<AWS::Partition>:(ecs|autoscaling|rds|kafka):<AWS::Region>:<AWS::AccountId>:.*\\*$/g' },
        ],
      },
    ]);

    // The build script would resolve a relative CAPSTAN_POLICIES against crates/lambda.
    const bundling = props.policies ? { environment: { CAPSTAN_POLICIES: path.resolve(props.policies) } } : undefined;
    const evaluator = new RustFunction(this, 'EvaluatorFunction', {
      manifestPath: WORKSPACE_MANIFEST,
      bundling,
      binaryName: 'evaluator',
      architecture: lambda.Architecture.ARM_64,
      description: 'capstan evaluator',
      memorySize: 256,
      timeout: Duration.seconds(60),
      reservedConcurrentExecutions: evaluatorConcurrency.valueAsNumber,
      role: evaluatorRole.withoutPolicyUpdates(),
      logGroup: evaluatorLogGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      environment: {
        DRY_RUN: dryRun.valueAsString,
        CAPSTAN_PAUSED: paused.valueAsString,
        CAPSTAN_MAX_IN_FLIGHT: maxInFlight.valueAsString,
        CAPSTAN_STATE_TABLE: stateTable.ref,
        CAPSTAN_DECISIONS_TOPIC: decisionsTopic.ref,
        CAPSTAN_SHARD_QUEUE: shardQueue.queueUrl,
        CAPSTAN_MAX_RESOURCES_PER_INVOCATION: maxResourcesPerInvocation.valueAsString,
        // Each evaluator keeps to 1/EvaluatorConcurrency of AWS's rate limits (docs/deploy.md).
        CAPSTAN_CONCURRENCY: evaluatorConcurrency.valueAsString,
      },
      deadLetterQueue,
      maxEventAge: Duration.seconds(900),
      retryAttempts: 2,
    });

    // One shard per invocation; the answer names the shards refused.
    new lambda.CfnEventSourceMapping(this, 'ShardQueueMapping', {
      eventSourceArn: shardQueue.queueArn,
      functionName: evaluator.functionName,
      batchSize: 1,
      functionResponseTypes: ['ReportBatchItemFailures'],
    });

    new events.Rule(this, 'AlarmStateChange', {
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        // This stack's alarms only (see template.yaml).
        detail: { alarmName: [{ prefix: `${alarmPrefix.valueAsString}/${Aws.STACK_NAME}/` }] },
      },
      targets: [new targets.LambdaFunction(evaluator)],
    });
    this.schedule('Tick', evaluator, {
      scheduleExpression: tickRate.valueAsString,
      description: 'capstan evaluator tick',
      input: TICK_INPUT,
      // A tick that cannot be delivered within a minute is superseded by the next one.
      retryPolicy: { maximumRetryAttempts: 0, maximumEventAgeInSeconds: 60 },
    });

    const stackAlarms = arn('cloudwatch', `alarm:${alarmPrefix.valueAsString}/${Aws.STACK_NAME}/*`);
    const alarmSyncRole = this.functionRole('AlarmSyncFunctionRole', deadLetterQueue, [
      new iam.PolicyStatement({
        sid: 'DescribeAlarms',
        actions: ['cloudwatch:DescribeAlarms'],
        resources: [arn('cloudwatch', 'alarm:*')],
      }),
      new iam.PolicyStatement({
        sid: 'WriteStackAlarms',
        actions: ['cloudwatch:PutMetricAlarm', 'cloudwatch:TagResource'],
        resources: [stackAlarms],
        conditions: {
          StringEquals: { 'aws:RequestTag/capstan:managed': 'true', 'aws:RequestTag/capstan:stack': Aws.STACK_NAME },
          'ForAllValues:StringEquals': { 'aws:TagKeys': ['capstan:managed', 'capstan:stack', 'capstan:policy'] },
          Null: { 'cloudwatch:AlarmActions': 'true' },
        },
      }),
      new iam.PolicyStatement({
        sid: 'ReadStackAlarmTags',
        actions: ['cloudwatch:ListTagsForResource'],
        resources: [stackAlarms],
      }),
      new iam.PolicyStatement({
        sid: 'DeleteStackAlarms',
        actions: ['cloudwatch:DeleteAlarms'],
        resources: [stackAlarms],
        conditions: {
          StringEquals: { 'aws:ResourceTag/capstan:managed': 'true', 'aws:ResourceTag/capstan:stack': Aws.STACK_NAME },
        },
      }),
    ]);
    NagSuppressions.addResourceSuppressions(alarmSyncRole, [
      {
        id: 'AwsSolutions-IAM5',
        reason:
          'Listing alarms by prefix is authorised against every alarm ARN (read-only); writes are limited to alarm ' +
          'names starting with <AlarmPrefix>/<stack name>/ and to capstan tags naming this stack, deletes to ' +
          'alarms tagged capstan:managed=true and capstan:stack=<stack name>.',
        appliesTo: [
          'Resource::arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:*',
          'Resource::arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:<AlarmPrefix>/<AWS::StackName>/*',
        ],
      },
    ]);

    const alarmSync = new RustFunction(this, 'AlarmSyncFunction', {
      manifestPath: WORKSPACE_MANIFEST,
      bundling,
      binaryName: 'alarm-sync',
      architecture: lambda.Architecture.ARM_64,
      description: 'capstan alarm-sync',
      memorySize: 256,
      timeout: Duration.seconds(300),
      reservedConcurrentExecutions: 1,
      role: alarmSyncRole.withoutPolicyUpdates(),
      logGroup: alarmSyncLogGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      environment: {
        CAPSTAN_ALARM_PREFIX: alarmPrefix.valueAsString,
        CAPSTAN_STACK: Aws.STACK_NAME,
      },
      deadLetterQueue,
      maxEventAge: Duration.seconds(3600),
      retryAttempts: 2,
    });
    // The log level is a parameter's value, which the typed property (an enum) cannot take.
    for (const fn of [evaluator, alarmSync]) {
      (fn.node.defaultChild as lambda.CfnFunction).addPropertyOverride(
        'LoggingConfig.ApplicationLogLevel',
        logLevel.valueAsString,
      );
    }
    this.schedule('DailySync', alarmSync, {
      scheduleExpression: 'rate(1 day)',
      description: 'capstan daily alarm sync',
      input: SYNC_ALARMS_INPUT,
    });
    new CustomResource(this, 'AlarmSync', {
      serviceToken: alarmSync.functionArn,
      resourceType: 'Custom::CapstanAlarmSync',
      properties: { PolicySetHash: policySetHash.valueAsString, AlarmPrefix: alarmPrefix.valueAsString },
    });

    // Health alarms: names start with the stack name, not AlarmPrefix; no capstan:managed tag.
    // Duration alarms fire at 80% of the function's timeout.
    const health: [string, string, lambda.IFunction, HealthMetric, number, number][] = [
      ['EvaluatorErrorsAlarm', 'evaluator-errors', evaluator, 'Errors', 1, 1],
      ['EvaluatorThrottlesAlarm', 'evaluator-throttles', evaluator, 'Throttles', 1, 3],
      ['EvaluatorDurationAlarm', 'evaluator-duration', evaluator, 'Duration', 48000, 1],
      ['AlarmSyncErrorsAlarm', 'alarm-sync-errors', alarmSync, 'Errors', 1, 1],
      ['AlarmSyncThrottlesAlarm', 'alarm-sync-throttles', alarmSync, 'Throttles', 1, 1],
      ['AlarmSyncDurationAlarm', 'alarm-sync-duration', alarmSync, 'Duration', 240000, 1],
    ];
    // One health alarm: `<stack>-health-<name>` on the metric, at or above the threshold, telling
    // the alerts topic; missing data is not breaching.
    const healthAlarm = (
      alarmId: string,
      name: string,
      alarmDescription: string,
      metric: Pick<cloudwatch.CfnAlarmProps, 'namespace' | 'metricName' | 'dimensions' | 'statistic'>,
      threshold = 1,
      evaluationPeriods = 1,
    ) =>
      new cloudwatch.CfnAlarm(this, alarmId, {
        alarmName: `${Aws.STACK_NAME}-health-${name}`,
        alarmDescription,
        ...metric,
        period: 300,
        evaluationPeriods,
        threshold,
        comparisonOperator: 'GreaterThanOrEqualToThreshold',
        treatMissingData: 'notBreaching',
        alarmActions: [alertsTopic.ref],
        okActions: [alertsTopic.ref],
      });
    for (const [alarmId, name, fn, metricName, threshold, evaluationPeriods] of health) {
      healthAlarm(
        alarmId,
        name,
        `capstan health: ${name} (see the function's log group).`,
        {
          namespace: 'AWS/Lambda',
          metricName,
          dimensions: [{ name: 'FunctionName', value: fn.functionName }],
          statistic: metricName === 'Duration' ? 'Maximum' : 'Sum',
        },
        threshold,
        evaluationPeriods,
      );
    }
    healthAlarm(
      'EvaluatorDeferredAlarm',
      'evaluator-deferred',
      'An evaluation pass reached its deadline before evaluating or acting on some resources.',
      { namespace: 'Capstan', metricName: 'Deferred', statistic: 'Sum' },
    );
    healthAlarm(
      'ShardQueueAgeAlarm',
      'shard-queue-age',
      'A shard of a fanned-out tick waited 5 minutes or more in the shard queue.',
      {
        namespace: 'AWS/SQS',
        metricName: 'ApproximateAgeOfOldestMessage',
        dimensions: [{ name: 'QueueName', value: shardQueue.queueName }],
        statistic: 'Maximum',
      },
      300,
    );
    healthAlarm(
      'DeadLetterQueueAlarm',
      'dead-letters',
      'An invocation of a capstan function failed for good and is in the dead-letter queue.',
      {
        namespace: 'AWS/SQS',
        metricName: 'ApproximateNumberOfMessagesVisible',
        dimensions: [{ name: 'QueueName', value: deadLetterQueue.queueName }],
        statistic: 'Maximum',
      },
    );

    new CfnOutput(this, 'EvaluatorFunctionArn', { description: "The evaluator Lambda's ARN.", value: evaluator.functionArn });
    new CfnOutput(this, 'AlarmSyncFunctionArn', { description: "The alarm-sync Lambda's ARN.", value: alarmSync.functionArn });
    new CfnOutput(this, 'StateTableName', { description: 'The DynamoDB state table.', value: stateTable.ref });
    new CfnOutput(this, 'DecisionsTopicArn', {
      description: 'Blocked or failed actuations are published here; subscribe to be told.',
      value: decisionsTopic.ref,
    });
    new CfnOutput(this, 'AlertsTopicArn', {
      description: "capstan's own health alarms notify this topic; subscribe to be told.",
      value: alertsTopic.ref,
    });
    new CfnOutput(this, 'DeadLetterQueueUrl', {
      description: 'Failed invocations of either function, and shards refused 5 times, land here.',
      value: deadLetterQueue.queueUrl,
    });
    new CfnOutput(this, 'ShardQueueUrl', {
      description: 'The shards of fanned-out ticks wait here for an evaluator.',
      value: shardQueue.queueUrl,
    });

    const capstanMetric = (metricName: string) =>
      new cloudwatch.Metric({ namespace: 'Capstan', metricName, statistic: 'Sum', period: Duration.minutes(1) });
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${Aws.STACK_NAME}-capstan`,
      widgets: [
        [
          new cloudwatch.GraphWidget({
            title: 'Decisions and actuations',
            left: ['Decisions', 'Actuations', 'BlockedByGuard', 'Errors', 'Deferred'].map(capstanMetric),
          }),
          new cloudwatch.GraphWidget({
            title: 'Actuations by policy',
            left: [
              new cloudwatch.MathExpression({
                expression: `SEARCH('{Capstan,Policy,TargetKind} MetricName="Actuations"', 'Sum', 300)`,
                period: Duration.minutes(5),
              }),
            ],
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Errors and throttles',
            left: [
              evaluator.metricErrors(),
              evaluator.metricThrottles(),
              alarmSync.metricErrors(),
              alarmSync.metricThrottles(),
              deadLetterQueue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum' }),
            ],
          }),
          new cloudwatch.GraphWidget({
            title: 'Duration (ms)',
            left: [evaluator.metricDuration({ statistic: 'Maximum' }), alarmSync.metricDuration({ statistic: 'Maximum' })],
          }),
        ],
      ],
    });
    new CfnOutput(this, 'DashboardName', {
      description: 'The CloudWatch dashboard of decisions and actuations.',
      value: dashboard.dashboardName,
    });

    for (const [name, value] of Object.entries(props.parameterDefaults ?? {})) {
      const parameter = this.node.tryFindChild(name);
      if (!(parameter instanceof CfnParameter)) {
        throw new Error(`parameterDefaults: the stack has no parameter ${name}`);
      }
      parameter.default = value;
    }
  }

  /** A log group named /capstan/<stack>/<name>, deleted with the stack. */
  private logGroup(id: string, name: string, retentionDays: CfnParameter): logs.ILogGroup {
    const group = new logs.CfnLogGroup(this, id, {
      logGroupName: `/capstan/${Aws.STACK_NAME}/${name}`,
      retentionInDays: retentionDays.valueAsNumber,
    });
    group.applyRemovalPolicy(RemovalPolicy.DESTROY);
    return logs.LogGroup.fromLogGroupArn(this, `${id}Ref`, group.attrArn);
  }

  /**
   * A function's role, with its statements inline as SAM writes them: the basic execution policy (as
   * SAM attaches it), sending to the dead-letter queue, and `statements`.
   */
  private functionRole(id: string, deadLetterQueue: sqs.IQueue, statements: iam.PolicyStatement[]): iam.Role {
    const role = new iam.Role(this, id, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole')],
      inlinePolicies: {
        Capstan: new iam.PolicyDocument({ statements }),
        DeadLetterQueue: new iam.PolicyDocument({
          statements: [new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [deadLetterQueue.queueArn] })],
        }),
      },
    });
    NagSuppressions.addResourceSuppressions(role, [
      {
        id: 'AwsSolutions-IAM4',
        reason:
          'AWSLambdaBasicExecutionRole only grants logs:CreateLogGroup, CreateLogStream and PutLogEvents; it is what ' +
          'SAM attaches to the same function in template.yaml.',
        appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole'],
      },
    ]);
    return role;
  }

  /** An EventBridge Scheduler schedule invoking `target` with a fixed input, through its own role. */
  private schedule(
    id: string,
    target: lambda.IFunction,
    options: { scheduleExpression: string; description: string; input: string; retryPolicy?: scheduler.CfnSchedule.RetryPolicyProperty },
  ): void {
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com'),
      inlinePolicies: {
        Invoke: new iam.PolicyDocument({
          statements: [new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [target.functionArn] })],
        }),
      },
    });
    new scheduler.CfnSchedule(this, id, {
      scheduleExpression: options.scheduleExpression,
      description: options.description,
      flexibleTimeWindow: { mode: 'OFF' },
      target: {
        arn: target.functionArn,
        roleArn: role.roleArn,
        input: options.input,
        retryPolicy: options.retryPolicy,
      },
    });
  }
}
